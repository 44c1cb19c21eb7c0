"""The review workstation: a web app where analysts confirm, reject and relabel detected violations."""
