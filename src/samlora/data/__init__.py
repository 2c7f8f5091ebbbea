"""Data layer: dataset registry, download/mirror, readers, preparation, transforms, datasets."""
