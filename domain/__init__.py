"""The data types every layer shares: the conversation and its events (`model`), the
exception hierarchy (`errors`) and the clock. Imports nothing of bot/ or storage/, which both
build on it."""
