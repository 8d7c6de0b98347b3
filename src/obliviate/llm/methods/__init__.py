"""Language-model unlearning methods, one file each; importing this package registers them."""

from obliviate.llm.methods import (  # noqa: F401
    altpo,
    ga,
    grad_diff,
    idk,
    idk_dpo,
    kl,
    npo,
    npo_gd,
    rmu,
    satimp,
    simnpo,
    undial,
    wga,
)
