"""The notes-quality evaluation set: hand-written meetings with gold notes (``meetings/``), how
they are loaded and turned into the pieces the notes engine reads (``eval_set``), the scorer
(``score``) and the engines the benchmark runs (``engines``). See ``README.md``."""
