"""Neural operator networks (registry) and the one-step `Stepper` that wraps them in physical units."""
