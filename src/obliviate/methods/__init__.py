"""Built-in unlearning methods, one file each; importing this package registers them."""

from obliviate.methods import (  # noqa: F401
    finetune,
    neggrad,
    neggrad_plus,
    random_label,
    retrain,
)
