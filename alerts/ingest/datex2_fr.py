"""DATEX II enumeration values and record types in French, for the sentences citizens read.

A value missing from these tables falls back to a generic French phrase chosen by the caller, never
to the raw DATEX II name ("RoadOrCarriagewayOrLaneManagement" means nothing to a citizen).
"""

from __future__ import annotations


def tonnes(value: str) -> str:
    """ "7.5" -> "7,5 t"; "5.0" -> "5 t"."""
    try:
        return f"{float(value):g} t".replace(".", ",")
    except ValueError:
        return f"{value} t"


# comparisonOperator of a vehicle weight: how the threshold reads after the vehicle type
WEIGHT_COMPARISONS: dict[str, str] = {
    "greaterThan": "de plus de {}",
    "greaterThanOrEqualTo": "de {} ou plus",
    "lessThan": "de moins de {}",
    "lessThanOrEqualTo": "de {} ou moins",
    "equalTo": "de {}",
}


def phrase(table: dict[str, str], value: str, fallback: str) -> str:
    """The French wording of a DATEX II value; `fallback` when the table does not know it."""
    return table.get(value.strip(), fallback) if value else fallback


# Situation record types (xsi:type), v2 and v3 names: used when the record's detail value is unknown.
RECORD_TYPES: dict[str, str] = {
    "Accident": "Accident",
    "AbnormalTraffic": "Trafic perturbé",
    "AnimalPresenceObstruction": "Animaux sur la chaussée",
    "AuthorityOperation": "Intervention des autorités",
    "Conditions": "Conditions de circulation difficiles",
    "ConstructionWorks": "Chantier",
    "DisturbanceActivity": "Perturbation",
    "EnvironmentalObstruction": "Obstacle naturel sur la chaussée",
    "EquipmentOrSystemFault": "Équipement en panne",
    "GeneralInstructionOrMessageToRoadUsers": "Consigne aux usagers",
    "GeneralNetworkManagement": "Mesure de gestion du trafic",
    "GeneralObstruction": "Obstacle sur la chaussée",
    "InfrastructureDamageObstruction": "Chaussée endommagée",
    "MaintenanceWorks": "Travaux d'entretien",
    "NetworkManagement": "Mesure de gestion du trafic",
    "NonWeatherRelatedRoadConditions": "Chaussée glissante",
    "PoorEnvironmentConditions": "Conditions météorologiques difficiles",
    "PublicEvent": "Manifestation",
    "ReroutingManagement": "Déviation",
    "RoadOperatorServiceDisruption": "Service de l'exploitant de la route perturbé",
    "RoadsideServiceDisruption": "Service sur l'aire perturbé",
    "RoadOrCarriagewayOrLaneManagement": "Restriction de circulation",
    "Roadworks": "Travaux",
    "RoadsideAssistance": "Assistance sur le bord de la route",
    "SpeedManagement": "Limitation de vitesse",
    "TransitInformation": "Information sur les transports",
    "VehicleObstruction": "Véhicule sur la chaussée",
    "WeatherRelatedRoadConditions": "Chaussée rendue difficile par la météo",
    "WinterDrivingManagement": "Équipements d'hiver obligatoires",
}

# Values of the record's *Type element (vehicleObstructionType, roadMaintenanceType...).
DETAILS: dict[str, str] = {
    # vehicle obstructions
    "brokenDownVehicle": "Véhicule en panne",
    "brokenDownHeavyLorry": "Poids lourd en panne",
    "abandonedVehicle": "Véhicule abandonné",
    "vehicleOnFire": "Véhicule en feu",
    "vehicleStuck": "Véhicule bloqué",
    "unlitVehicleOnTheRoad": "Véhicule non éclairé sur la chaussée",
    "slowMovingMaintenanceVehicle": "Véhicule d'entretien lent",
    "vehicleOnWrongCarriageway": "Véhicule à contresens",
    "damagedVehicle": "Véhicule endommagé",
    "convoy": "Convoi",
    "abnormalLoad": "Convoi exceptionnel",
    "vehicleCarryingHazardousMaterials": "Véhicule transportant des matières dangereuses",
    "vehicleStuckUnderBridge": "Véhicule bloqué sous un pont",
    "snowplough": "Chasse-neige en action",
    "saltingVehicle": "Saleuse en action",
    # accidents
    "accident": "Accident",
    "collision": "Collision",
    "multivehicleAccident": "Accident impliquant plusieurs véhicules",
    "accidentInvolvingHeavyLorries": "Accident impliquant un poids lourd",
    "overturnedVehicle": "Véhicule renversé",
    # lane and road management
    "roadClosed": "Route fermée",
    "carriagewayClosures": "Chaussée fermée",
    "laneClosures": "Voie fermée",
    "narrowLanes": "Voies rétrécies",
    "contraflow": "Circulation à contresens",
    "singleAlternateLineTraffic": "Circulation alternée",
    "hardShoulderRunningInOperation": "Bande d'arrêt d'urgence ouverte à la circulation",
    "exitClosed": "Sortie fermée",
    "entryClosed": "Entrée fermée",
    "rampClosures": "Bretelle fermée",
    "overnightClosures": "Fermeture de nuit",
    "intermittentShortTermClosures": "Coupures momentanées",
    "useOfSpecifiedLanesOrCarriagewaysAllowed": "Circulation sur des voies désignées",
    "lanesDeviated": "Voies déviées",
    "bridgeClosed": "Pont fermé",
    "tunnelClosed": "Tunnel fermé",
    "closedPermanentlyForTheWinter": "Route fermée pour l'hiver",
    # speed management
    "speedRestrictionInOperation": "Limitation de vitesse",
    "observeSpeedLimits": "Respectez les limitations de vitesse",
    "reduceYourSpeed": "Réduisez votre vitesse",
    # maintenance works
    "roadworks": "Travaux",
    "maintenanceWork": "Travaux d'entretien",
    "resurfacingWork": "Réfection de la chaussée",
    "roadMarkingWork": "Marquage au sol",
    "repairWork": "Réparations",
    "installationWork": "Travaux d'installation",
    "treeAndVegetationCuttingWork": "Élagage",
    "grassCuttingWork": "Fauchage",
    "winterMaintenance": "Viabilité hivernale",
    "clearance": "Dégagement de la chaussée",
    "overrunning": "Travaux prolongés",
    "bridgeMaintenanceWork": "Travaux sur un pont",
    # weather-related road conditions
    "ice": "Verglas",
    "blackIce": "Verglas",
    "freezingRain": "Pluie verglaçante",
    "frost": "Gel sur la chaussée",
    "snowOnTheRoad": "Neige sur la chaussée",
    "snowDrifts": "Congères",
    "slushOnRoad": "Neige fondante sur la chaussée",
    "packedSnow": "Neige tassée",
    "wetAndIcyRoad": "Chaussée humide et verglacée",
    "icyPatches": "Plaques de verglas",
    "freezingOfWetRoads": "Chaussée mouillée qui gèle",
    "surfaceWater": "Eau sur la chaussée",
    "freezingPavements": "Chaussée gelée",
    "looseSnow": "Neige fraîche",
    "roadSurfaceInPoorCondition": "Chaussée en mauvais état",
    "wet": "Chaussée mouillée",
    "snowfall": "Chutes de neige",
    "heavySnowfall": "Fortes chutes de neige",
    # poor environment conditions
    "fog": "Brouillard",
    "denseFog": "Brouillard dense",
    "patchyFog": "Bancs de brouillard",
    "freezingFog": "Brouillard givrant",
    "smokeHazard": "Fumée",
    "strongWinds": "Vents forts",
    "galeForceWinds": "Vents violents",
    "blizzard": "Tempête de neige",
    "hail": "Grêle",
    "heavyRain": "Fortes pluies",
    "sleet": "Neige mêlée de pluie",
    "visibilityReduced": "Visibilité réduite",
    "sandStorms": "Vent de sable",
    "crosswinds": "Vent latéral",
    "damagingHail": "Grêle",
    "extremeCold": "Grand froid",
    "extremeHeat": "Fortes chaleurs",
    "stormForceWinds": "Tempête",
    # environmental obstructions
    "flooding": "Inondation",
    "fallenTrees": "Arbres tombés sur la chaussée",
    "rockfalls": "Chute de pierres",
    "avalanches": "Avalanche",
    "mudSlide": "Coulée de boue",
    "landslips": "Glissement de terrain",
    "stormDamage": "Dégâts dus à la tempête",
    "flashFloods": "Crue soudaine",
    "forestFire": "Feu de forêt",
    "grassFire": "Feu d'herbes",
    # general obstructions
    "objectOnTheRoad": "Objet sur la chaussée",
    "obstructionOnTheRoad": "Obstacle sur la chaussée",
    "peopleOnRoadway": "Piétons sur la chaussée",
    "spillageOnTheRoad": "Déversement sur la chaussée",
    "animalsOnTheRoad": "Animaux sur la chaussée",
    "herdOfAnimalsOnTheRoad": "Troupeau sur la chaussée",
    # abnormal traffic
    "stationaryTraffic": "Circulation à l'arrêt",
    "queuingTraffic": "Bouchon",
    "slowTraffic": "Circulation ralentie",
    "heavyTraffic": "Circulation dense",
    "unspecifiedAbnormalTraffic": "Trafic perturbé",
    # winter driving
    "winterEquipmentMandatory": "Équipements d'hiver obligatoires",
    "snowChainsMandatory": "Chaînes obligatoires",
    "snowTyresMandatory": "Pneus neige obligatoires",
    "snowChainsOrTyresMandatory": "Chaînes ou pneus neige obligatoires",
    "winterEquipmentRecommended": "Équipements d'hiver recommandés",
    # general network management
    "trafficBeingManuallyDirected": "Circulation réglée manuellement",
    "rerouting": "Déviation",
    "temporaryTrafficLights": "Feux de chantier",
    "convoyService": "Circulation sous escorte",
    "bridgeSwingInOperation": "Pont tournant en manœuvre",
}

# TransitInformation: what happens to which service.
TRANSIT_SERVICES: dict[str, str] = {
    "ferry": "Liaison par bac",
    "rail": "Liaison ferroviaire",
    "bus": "Ligne de car",
    "air": "Liaison aérienne",
    "tram": "Ligne de tramway",
}
TRANSIT_INFORMATION: dict[str, str] = {
    "cancellation": "supprimée",
    "cancelled": "supprimée",
    "serviceSuspended": "suspendue",
    "serviceWithdrawn": "supprimée",
    "delays": "retardée",
    "delayed": "retardée",
    "serviceFullyBooked": "complète",
    "loadCapacityChanged": "capacité modifiée",
}

DIRECTIONS: dict[str, str] = {
    "both": "dans les deux sens",
    "bothWays": "dans les deux sens",
    "allDirections": "dans tous les sens",
    "positive": "dans le sens croissant",
    "negative": "dans le sens décroissant",
    "northBound": "en direction du nord",
    "southBound": "en direction du sud",
    "eastBound": "en direction de l'est",
    "westBound": "en direction de l'ouest",
    "northEastBound": "en direction du nord-est",
    "northWestBound": "en direction du nord-ouest",
    "southEastBound": "en direction du sud-est",
    "southWestBound": "en direction du sud-ouest",
    "clockwise": "dans le sens horaire",
    "anticlockwise": "dans le sens antihoraire",
    "inboundTowardsTown": "en direction du centre",
    "outboundFromTown": "en sortant de la ville",
    "innerRing": "sur l'anneau intérieur",
    "outerRing": "sur l'anneau extérieur",
    "aligned": "dans le sens de la section",
    "opposite": "dans le sens opposé",
}

CAUSES: dict[str, str] = {
    "accident": "un accident",
    "roadMaintenance": "des travaux",
    "roadworks": "des travaux",
    "poorWeather": "les conditions météorologiques",
    "badWeather": "les conditions météorologiques",
    "obstruction": "un obstacle",
    "vehicleObstruction": "un véhicule gênant",
    "congestion": "un bouchon",
    "environmentalObstruction": "un obstacle naturel",
    "publicEvent": "une manifestation",
    "securityIncident": "un incident de sécurité",
    "infrastructureDamageObstruction": "des dégâts sur la chaussée",
    "equipmentOrSystemFault": "une panne d'équipement",
    "abnormalTraffic": "un trafic perturbé",
    "winterDrivingConditions": "les conditions hivernales",
    "snow": "la neige",
    "ice": "le verglas",
    "flooding": "une inondation",
    "fire": "un incendie",
    "rescueAndRecoveryWork": "des opérations de secours",
    "poorRoadSurfaceConditions": "l'état de la chaussée",
    "roadOrCarriagewayOrLaneManagement": "une restriction de circulation",
}

# Traffic regulations (DATEX II v3 trafficRegulation module, DiaLog).
REGULATION_TYPES: dict[str, str] = {
    "noEntry": "Accès interdit",
    "noThroughTraffic": "Circulation de transit interdite",
    "noEntryForVehiclesOverWeight": "Accès interdit selon le poids",
    "noOvertaking": "Dépassement interdit",
    "noParking": "Stationnement interdit",
    "noStopping": "Arrêt interdit",
    "AccessRestriction": "Accès réglementé",
    "SpeedLimit": "Vitesse limitée",
    "maximumSpeed": "Vitesse limitée",
    "roadClosed": "Route fermée",
    "oneWay": "Sens unique",
    "alternateLineTraffic": "Circulation alternée",
}
VEHICLE_TYPES: dict[str, str] = {
    "heavyGoodsVehicle": "poids lourds",
    "lorry": "poids lourds",
    "heavyLorry": "poids lourds",
    "articulatedVehicle": "véhicules articulés",
    "largeGoodsVehicle": "poids lourds",
    "goodsVehicle": "véhicules de marchandises",
    "lightGoodsVehicle": "véhicules utilitaires légers",
    "commercial": "véhicules de livraison",
    "bus": "autocars et autobus",
    "coach": "autocars",
    "car": "voitures",
    "motorcycle": "motos",
    "bicycle": "vélos",
    "pedestrian": "piétons",
    "agriculturalVehicle": "engins agricoles",
    "vehicleWithTrailer": "véhicules avec remorque",
    "trailer": "remorques",
    "caravan": "caravanes",
    "carWithCaravan": "voitures avec caravane",
    "motorhome": "camping-cars",
    "tanker": "camions-citernes",
    "anyVehicle": "véhicules",
    "moped": "cyclomoteurs",
    "van": "camionnettes",
}
VEHICLE_USAGES: dict[str, str] = {
    "emergencyServices": "véhicules de secours",
    "agricultural": "engins agricoles",
    "military": "véhicules militaires",
    "publicTransport": "transports en commun",
    "roadMaintenanceOrConstruction": "véhicules d'entretien de la route",
    "roadOperator": "véhicules de l'exploitant",
    "taxi": "taxis",
    "delivery": "véhicules de livraison",
    "commercial": "véhicules professionnels",
    "nonCommercial": "véhicules particuliers",
    "police": "police",
    "residents": "riverains",
    "localTraffic": "desserte locale",
}
