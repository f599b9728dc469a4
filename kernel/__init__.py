"""The shared kernel: small, dependency-free pieces every package of ours may import.

Nothing here imports another package of ours, so ``media/`` and
``interpretation/`` stay importable on their own.
"""
