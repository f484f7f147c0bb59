"""Examples published in the C2SP specifications (github.com/C2SP/C2SP), copied verbatim.

Each constant names its spec file and section. They are the independent check of our
signed-note, checkpoint, cosignature, witness and tile encodings.
"""

from __future__ import annotations

# signed-note.md, "Verifier keys" → "Example": this verifier key verifies this note.
SIGNED_NOTE_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SIGNED_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# signed-note.md, the note at the top of the document (text with an empty line inside).
QUASIMODO_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
    "\n"
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)

# tlog-checkpoint.md, the example at the top of the document.
CHECKPOINT_NOTE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

# tlog-cosignature.md, the example at the top: the checkpoint above with a witness cosignature.
COSIGNED_CHECKPOINT_NOTE = CHECKPOINT_NOTE + (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)

# tlog-cosignature.md, "Ed25519 signed message": the message for timestamp 1679315147.
COSIGNED_MESSAGE_TIMESTAMP = 1679315147
COSIGNED_MESSAGE = (
    "cosignature/v1\n"
    "time 1679315147\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)

# tlog-witness.md, "add-checkpoint": the example request body.
ADD_CHECKPOINT_BODY = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
)

# tlog-tiles.md, "Merkle Tree": index 1234067 is written x001/x234/067.
TILE_INDEX = (1234067, "x001/x234/067")

# tlog-tiles.md, "Partial Tiles": a tree of 70,000 leaves has 273 full level-0 tiles, a
# partial level-0 tile of width 112, one full level-1 tile, a partial level-1 tile of width 17,
# and a partial level-2 tile of width 1; a tree of 256 a full level-0 tile and a partial
# level-1 tile of width 1.
TILES_OF_70000 = {"full": {0: 273, 1: 1, 2: 0}, "partial": {0: 112, 1: 17, 2: 1}}

# tlog-proof.md, the example at the top of the document (its signatures are elided with "[...]"
# in the spec, so only the proof part is usable: the checkpoint is kept verbatim as text).
TLOG_PROOF = (
    "c2sp.org/tlog-proof@v1\n"
    "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
    "index 73894\n"
    "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
    "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
    "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
    "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
    "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
    "\n"
    "example.com/fancylog\n"
    "109482\n"
    "sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
    "\n"
    "— example.com/fancylog hI2DJw[...]1roloI=\n"
    "— witness1.example mJirIklj[...]qY9v2B/5bg==\n"
    "— witness2.example TnKKVHLX[...]xwYwrSjgow==\n"
    "— witness3.example S4X82uH5[...]3oEcROGLFQ==\n"
)
