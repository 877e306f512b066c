"""The one seam for remote effects: a Runner runs commands and moves files on one host."""
