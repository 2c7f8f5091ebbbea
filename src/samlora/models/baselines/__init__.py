"""Baseline segmenters (U-Net, DeepLabV3+, SegFormer, Mask2Former) behind samlora's builder."""
