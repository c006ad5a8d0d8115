"""Two-stage cross-modal alignment policy (1-Align, 2-Align, DSSA, MGFA, PosA) and its node."""
