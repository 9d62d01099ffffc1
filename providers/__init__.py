"""Identity provider drivers: one module per IdP kind."""
