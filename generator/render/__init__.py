"""Stage 3, rendering: questions and documents through Jinja (`documents`, in the sandbox of
`sandbox`, with the project's templates and syntax from `templating`), values and text as
LaTeX through one place (`latex`)."""
