"""Online exports of a build's draw: Moodle XML, QTI 1.2 (Canvas) and QTI 2.1 (docs/export.md)."""
