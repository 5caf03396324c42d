"""Published numbers of the two papers, each with the table or figure it comes from."""
