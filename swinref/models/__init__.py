"""One module per Swin family (v1, v2, video) with its weight layouts, and the registry that
dispatches on the config type."""
