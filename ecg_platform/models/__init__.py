"""Models by name (`registry`), the protocol the engine trains them through, the study's CNN."""
