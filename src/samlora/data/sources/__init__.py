"""One module per dataset, each defining ``SPEC`` (a ``samlora.data.registry.DatasetSpec``)."""
