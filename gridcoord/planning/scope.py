"""Planning per substation (DESIGN 7): the part of a city one planning instance owns.

`planning.roots` names root zones (substations). An instance with roots plans and commands
only what is connected below them: their zone trees, the chargers in them, and the PV, wind
and meters in them (each substation is given the renewable generation connected below it).
Assets outside every zone belong to no substation and to no scoped instance. Trees share no
constraint, so instances with disjoint roots plan the city between them, and the union of
their setpoints is what one instance planning every root sends.
"""

from __future__ import annotations

from gridcoord.config import Config


def planning_scope(config: Config) -> Config:
    """The deployment as an instance with ``planning.roots`` sees it (unchanged without).

    Parameters
    ----------
    config : Config
        The whole deployment; its roots are validated (each a zone without a parent).

    Returns
    -------
    Config
        Only the zones below the roots and the assets in those zones.
    """
    roots = set(config.planning.roots)
    if not roots:
        return config
    parents = {z.id: z.parent for z in config.zones}
    root_of: dict[str, str | None] = {}

    def root(zone_id: str) -> str | None:
        seen = []
        cursor: str | None = zone_id
        while cursor is not None and cursor not in root_of:
            seen.append(cursor)
            parent = parents[cursor]
            if parent is None:
                root_of[cursor] = cursor
                break
            cursor = parent
        top = root_of.get(cursor) if cursor is not None else None
        for z in seen:
            root_of[z] = top
        return top

    kept = {z.id for z in config.zones if root(z.id) in roots}
    zones = [z for z in config.zones if z.id in kept]
    assets = [a for a in config.assets if a.zone is not None and a.zone in kept]
    scoped = config.model_copy(update={"zones": zones, "assets": assets})
    scoped.__dict__.pop("_asset_index", None)  # the copy must not keep the whole city's index
    return scoped
