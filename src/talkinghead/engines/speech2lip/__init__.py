"""The ``speech2lip`` engine (Speech2Lip, Wu et al., ICCV 2023): only the lips are generated."""
