"""`make demo`: the whole loop on the local stack, told as five short stories."""
