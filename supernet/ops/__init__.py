"""Operations (modules) used by supernets. Spaces are data; modules live here."""
