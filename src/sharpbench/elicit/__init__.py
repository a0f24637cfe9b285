"""How smart is this model, really: the plain score against the best honest elicitation (``sharpbench elicit``)."""
