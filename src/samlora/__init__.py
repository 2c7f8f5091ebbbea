"""samlora: LoRA-adapted Segment Anything models for retinal segmentation."""
__version__ = "0.1.0"
