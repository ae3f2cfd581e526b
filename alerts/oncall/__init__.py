"""When the community manager is not at the desk: the on-call rota (rota.py, French public holidays in
holidays.py) and the pager that pages the chain and takes SMS answers (pager.py)."""

from .holidays import french_holidays, is_holiday
from .pager import OnCall, page_key
from .rota import Delays, Person, Rota, load_rota

__all__ = ["Delays", "OnCall", "Person", "Rota", "french_holidays", "is_holiday", "load_rota", "page_key"]
