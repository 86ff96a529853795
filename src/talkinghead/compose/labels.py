"""Segmentation labels of a subject's ``masks/000000.png`` (written by ``prepare``, read by engines).

0 background, 1 neck/torso, 2 head (hair, ears, face), 3 face region (inside the
face oval). ``HEAD_LABELS`` are the labels that belong to the head.
"""

BACKGROUND, TORSO, HEAD, FACE = 0, 1, 2, 3
HEAD_LABELS = (HEAD, FACE)
