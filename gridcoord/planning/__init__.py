"""Planning runs: a frozen snapshot of state and forecasts in, an optimizer problem out."""
