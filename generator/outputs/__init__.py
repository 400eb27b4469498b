"""Stage 5, outputs: the output folder replaced atomically (`output`), its file names (`layout`),
manifest.json (`manifest`), answers.csv (`keytable`) and what the next build can reuse (`cache`)."""
