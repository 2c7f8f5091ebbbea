"""SAM backbones (segment_anything), LoRA (peft), the spatial adapter and the segmenter."""
