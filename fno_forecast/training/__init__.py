"""Training: config (flat TOML, strict), loss, schedule, loop, checkpoint (exact resume), distributed."""
