# Sourced by the stages that run the quick benchmark (60, 61). That run checks that the parts work,
# never their speed, so its release builds skip what only speed needs: link-time optimisation
# across crates and code generation in few units, which cost build time on two cores. Both stages
# must build with the same settings, or the second rebuilds everything.
export CARGO_PROFILE_RELEASE_LTO=off
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
