"""Built-in unlearning methods, one file each; importing this package registers them."""

from obliviate.methods import (  # noqa: F401
    bad_teacher,
    certified_removal,
    cf_k,
    dp_original,
    eu_k,
    finetune,
    fisher,
    influence,
    l1_sparse,
    lora_unlearn,
    neggrad,
    neggrad_plus,
    prune_zero,
    random_label,
    reset_distill,
    retrain,
    salun,
    scrub,
    sisa,
    ssd,
)
