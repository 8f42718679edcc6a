"""Answers a reader can trust: compact evidence, extractive answers, the grounding check, conversations.

hits --select()--> evidence (the sentences and code that bear on the question, per block)
     --compose()--> an extractive answer (no model)       or  --prompt + model--> a generated answer
                                                             --check()--> grounded, or fall back
"""

from ragline.answer.check import Check, check_answer
from ragline.answer.compose import compose
from ragline.answer.conversation import standalone_question
from ragline.answer.evidence import Evidence, EvidenceBlock, Unit, select, split_units

__all__ = [
    "Check",
    "Evidence",
    "EvidenceBlock",
    "Unit",
    "check_answer",
    "compose",
    "select",
    "split_units",
    "standalone_question",
]
