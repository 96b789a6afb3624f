"""`lab verify`: probes, a capture of the Internet link and charon's SAs, judged by named checks."""
