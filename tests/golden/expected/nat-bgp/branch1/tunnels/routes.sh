#!/bin/sh
# Rendered by lab: routes of branch1 into its tunnel interfaces whose CHILD_SA is up.
exit 0
