"""What is handed to Graphviz's `dot` (svg, png, pdf; not .dot or stdout, which `dot` never sees).  Imports
nothing, so that building the command line parser, which every command does, stays cheap.

Layout time grows faster than the number of boxes: 1,000 boxes side by side (one concat of 1,000 branches) took
4 s, 1,400 took 7 s and 2,000 took 12 s, while the largest zoo diagram (densenet121 --no-fold) has 429.  See
docs/draw.md.
"""

MAX_BOXES = 1000
DOT_TIMEOUT = 60.0
