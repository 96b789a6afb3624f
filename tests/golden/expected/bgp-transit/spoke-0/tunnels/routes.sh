#!/bin/sh
# Rendered by lab: routes of spoke-0 into its tunnel interfaces whose CHILD_SA is up.
exit 0
