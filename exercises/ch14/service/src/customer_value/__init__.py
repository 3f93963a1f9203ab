"""customer_value: the Chapter 12 prediction service, packaged in Chapter 14."""
