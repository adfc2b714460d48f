"""Guests: built images, downloaded recipes, and the programs and test runs that go inside them."""
