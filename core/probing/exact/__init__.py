"""Exact k-sparse probes with a certificate: one module per objective (ridge least squares, logistic), the shared result type and the selector."""
