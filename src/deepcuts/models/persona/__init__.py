"""Persona models: several taste vectors per listener.

* :class:`PostHocPersonas` (registry name ``persona``, the default) - PinnerSage-style personas
  from any trained single-vector model: each user's played items are clustered in the model's
  item space, one vector per cluster, and the combined list blends the user's own vector with a
  mixture-of-tastes score over the personas.
* :class:`PersonaALS` (``persona-als``) - MaxMF personas trained jointly by an ALS extension.

Parts: ``_scoring`` (max and mixture-of-tastes scores, per-persona and blended lists),
``_labels`` (what a listener sees: shares, top artists, distinct labels), ``_diagnostics``
(persona health), ``_maxmf`` (PersonaALS training), ``_posthoc`` (post-hoc clustering).
"""

from deepcuts.models.persona._labels import TAB_MIN_ITEMS, TAB_MIN_SHARE, shown
from deepcuts.models.persona._maxmf import PersonaALS
from deepcuts.models.persona._posthoc import PostHocPersonas

__all__ = ["TAB_MIN_ITEMS", "TAB_MIN_SHARE", "PersonaALS", "PostHocPersonas", "shown"]
