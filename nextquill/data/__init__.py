"""Data preparation: raw benchmark files in, with-history and without-history examples out."""
