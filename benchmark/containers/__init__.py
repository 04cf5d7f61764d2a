"""``make docker-test``: the container files built and run for real, under podman.

The Dockerfiles and docker-compose.yml are what Docker users run; no Docker engine exists where the
project is developed and tested, but podman (rootful, host network) does. So the images are built
on a stand-in for the official Python base made from Debian's packages (:mod:`.standin`), from a
wheel folder made on the host (:mod:`.wheels`: no package index inside a build), the compose file
with its host-network override is started through podman's Docker-compatible API (:mod:`.stack`),
and the README's calls and a short load are sent to it (:mod:`.checks`). doc/containers.md says what
this verifies and what it does not.
"""
