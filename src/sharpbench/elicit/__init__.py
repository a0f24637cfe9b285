"""How smart is this model, really: the plain score against the best honest elicitation (``sharpbench elicit``).

:func:`~sharpbench.elicit.study.elicit` runs every method's prompts ("arms")
on each model x task, storing each as an ordinary run, then scores them with
:mod:`~sharpbench.elicit.stats` (held-out selection, paired bootstrap).
:mod:`~sharpbench.elicit.families` says which prompts each method runs on each
task, :mod:`~sharpbench.elicit.probe` reads the answer from hidden states, and
:mod:`~sharpbench.elicit.plots` draws the figures of the HTML report.
"""
