"""The four services' own APIs; each reads and writes only its own tables (``<service>_*``)."""

from .ih import InternetHospital
from .journey import Journey
from .portal import Portal
from .waiting import WaitingHall

SERVICE_CLASSES = {"portal": Portal, "ih": InternetHospital, "waiting": WaitingHall, "journey": Journey}
