"""South African name lists by population group (package data, kept small on purpose).

Faker has no ``en_ZA`` locale and its ``zu_ZA`` lists are short, so the simulator ships its own.
Shares of the population groups follow Gauteng's mid-year estimates (Stats SA), rounded.
"""

from __future__ import annotations

from typing import Final

# Gauteng population groups and their approximate shares.
POPULATION_GROUPS: Final[tuple[str, ...]] = ("Black African", "White", "Coloured", "Indian/Asian")
GROUP_SHARES: Final[tuple[float, ...]] = (0.84, 0.10, 0.035, 0.025)

FEMALE_FIRST: Final[dict[str, tuple[str, ...]]] = {
    "Black African": (
        "Thandiwe", "Nomvula", "Lerato", "Palesa", "Zanele", "Nokuthula", "Sibongile", "Ayanda",
        "Thembi", "Naledi", "Boitumelo", "Dineo", "Refilwe", "Mpho", "Lindiwe", "Busisiwe",
        "Nandi", "Khanyisile", "Zodwa", "Precious", "Nompumelelo", "Kgomotso", "Tshepiso",
        "Ntombi", "Lungile", "Hlengiwe", "Mbali", "Zinhle", "Puleng", "Masego", "Keabetswe",
        "Thato", "Nosipho", "Onalenna", "Rethabile", "Amahle", "Lesedi", "Khensani", "Tsakani",
        "Rudzani", "Mulalo", "Nthabiseng", "Gugu", "Bontle", "Unathi", "Siphesihle",
    ),
    "White": (
        "Anna", "Elize", "Marietjie", "Susan", "Karin", "Annelie", "Chantel", "Michelle",
        "Nicole", "Jessica", "Lauren", "Megan", "Carla", "Ilse", "Sonja", "Riana", "Liezl",
        "Elmarie", "Charlotte", "Emma", "Mia", "Sarah", "Hannah", "Catherine",
    ),
    "Coloured": (
        "Chantelle", "Natasha", "Shireen", "Denise", "Bernadette", "Charmaine", "Nadia",
        "Lee-Ann", "Monique", "Tasneem", "Fatima", "Candice", "Jo-Anne", "Rochelle", "Zoe",
    ),
    "Indian/Asian": (
        "Priya", "Anusha", "Kavitha", "Nirvana", "Shanthi", "Reshma", "Ayesha", "Fatima",
        "Zainab", "Deshnee", "Sharmila", "Trisha", "Yusra", "Kiara", "Shreya",
    ),
}

MALE_FIRST: Final[dict[str, tuple[str, ...]]] = {
    "Black African": (
        "Sipho", "Thabo", "Bongani", "Mandla", "Sibusiso", "Themba", "Kagiso", "Tshepo",
        "Lwazi", "Siyabonga", "Tebogo", "Lethabo", "Musa", "Vusi", "Jabulani", "Andile",
        "Lucky", "Thulani", "Katlego", "Neo", "Kabelo", "Mpho", "Lungisani", "Sizwe", "Xolani",
        "Zola", "Mthunzi", "Khaya", "Ofentse", "Tumelo", "Karabo", "Dumisani", "Nkosinathi",
        "Bheki", "Mxolisi", "Rendani", "Tshilidzi", "Hlulani", "Nhlanhla", "Lindani", "Junior",
        "Blessing", "Tiisetso", "Itumeleng",
    ),
    "White": (
        "Johan", "Pieter", "Willem", "Hendrik", "Jan", "Gert", "Francois", "Andre", "Michael",
        "David", "James", "Ruan", "Jaco", "Christo", "Dewald", "Stefan", "Riaan", "Marius",
        "Daniel", "Liam", "Ethan", "Matthew", "Wian", "Connor",
    ),
    "Coloured": (
        "Ashwin", "Clinton", "Shaun", "Jerome", "Brandon", "Ricardo", "Deon", "Ebrahim",
        "Reagan", "Marlon", "Cheslyn", "Ivan", "Faiek", "Nathan", "Keenan",
    ),
    "Indian/Asian": (
        "Rajesh", "Pravin", "Suresh", "Kiran", "Ashok", "Yusuf", "Imraan", "Mohammed",
        "Vikash", "Ravi", "Deven", "Nikhil", "Zaheer", "Ishaan", "Aryan",
    ),
}

SURNAMES: Final[dict[str, tuple[str, ...]]] = {
    "Black African": (
        "Dlamini", "Nkosi", "Ndlovu", "Khumalo", "Mokoena", "Mahlangu", "Sithole", "Zulu",
        "Mthembu", "Ngcobo", "Buthelezi", "Mkhize", "Molefe", "Mabena", "Shabalala", "Masilela",
        "Mofokeng", "Nkuna", "Baloyi", "Maluleke", "Mathebula", "Radebe", "Mazibuko", "Tshabalala",
        "Modise", "Motaung", "Sibiya", "Ntuli", "Hlongwane", "Vilakazi", "Cele", "Gumede",
        "Mnisi", "Makhubela", "Chauke", "Netshitenzhe", "Mudau", "Ramaphosa", "Phiri", "Moloi",
        "Letsoalo", "Mokwena", "Tau", "Nxumalo", "Xaba", "Zwane", "Maseko", "Kekana", "Mabaso",
        "Sebola", "Mashaba", "Magagula", "Ngwenya", "Mbatha", "Shezi", "Mthethwa", "Madonsela",
    ),
    "White": (
        "van der Merwe", "Botha", "Pretorius", "Nel", "van Wyk", "Smit", "Venter", "du Plessis",
        "Fourie", "Coetzee", "Steyn", "Kruger", "Jacobs", "Joubert", "Swanepoel", "Smith",
        "Taylor", "Jones", "Brown", "Williams", "Muller", "Viljoen", "le Roux", "Erasmus",
    ),
    "Coloured": (
        "Adams", "Jacobs", "Hendricks", "Isaacs", "Petersen", "Williams", "Daniels", "Abrahams",
        "Arendse", "Davids", "Fortuin", "Johnson", "Solomons", "Booysen", "Cupido", "Samuels",
    ),
    "Indian/Asian": (
        "Naidoo", "Govender", "Pillay", "Moodley", "Reddy", "Chetty", "Singh", "Maharaj",
        "Patel", "Moosa", "Essop", "Khan", "Padayachee", "Ramsamy", "Bhana", "Desai",
    ),
}

STREETS: Final[tuple[str, ...]] = (
    "Vilakazi Street", "Main Road", "Jan Smuts Avenue", "Louis Botha Avenue", "Rivonia Road",
    "Commissioner Street", "Bree Street", "Oxford Road", "Empire Road", "Beyers Naude Drive",
    "Andrew Mapheto Drive", "Klipspruit Valley Road", "Chris Hani Road", "Old Potchefstroom Road",
    "Vincent Road", "Pixley ka Seme Street", "Jorissen Street", "Juta Street", "4th Avenue",
    "7th Street", "Church Street", "Station Road", "Ntemi Piliso Street", "Grayston Drive",
    "Katherine Street", "London Road", "Modjadji Street", "Andrew Street", "Kruger Street",
    "Mooi Street", "Nelson Mandela Drive", "Olifantsfontein Road", "Rabie Street", "Bram Fischer Drive",
)

# (suburb, city, postal code, relative weight): weights roughly follow resident population.
SUBURBS: Final[tuple[tuple[str, str, str, float], ...]] = (
    ("Orlando East", "Soweto", "1804", 3.0),
    ("Diepkloof", "Soweto", "1862", 3.0),
    ("Meadowlands", "Soweto", "1852", 3.0),
    ("Pimville", "Soweto", "1809", 2.0),
    ("Dobsonville", "Soweto", "1863", 2.0),
    ("Protea Glen", "Soweto", "1818", 2.0),
    ("Jabulani", "Soweto", "1868", 1.5),
    ("Hillbrow", "Johannesburg", "2001", 2.0),
    ("Yeoville", "Johannesburg", "2198", 1.0),
    ("Berea", "Johannesburg", "2198", 1.0),
    ("Braamfontein", "Johannesburg", "2001", 0.6),
    ("Melville", "Johannesburg", "2092", 0.5),
    ("Mayfair", "Johannesburg", "2108", 0.7),
    ("Rosettenville", "Johannesburg", "2190", 1.0),
    ("Parktown", "Johannesburg", "2193", 0.4),
    ("Sandton", "Sandton", "2196", 1.0),
    ("Bryanston", "Sandton", "2191", 0.8),
    ("Sandown", "Sandton", "2196", 0.4),
    ("Alexandra", "Johannesburg", "2090", 3.0),
    ("Tembisa", "Tembisa", "1632", 4.0),
    ("Midrand", "Midrand", "1685", 1.5),
    ("Diepsloot", "Johannesburg", "2189", 2.5),
    ("Randburg", "Randburg", "2194", 1.2),
    ("Roodepoort", "Roodepoort", "1724", 1.5),
    ("Lenasia", "Johannesburg", "1827", 1.2),
    ("Eldorado Park", "Johannesburg", "1811", 1.2),
    ("Orange Farm", "Johannesburg", "1841", 2.0),
    ("Kempton Park", "Ekurhuleni", "1619", 1.5),
    ("Katlehong", "Ekurhuleni", "1431", 2.5),
    ("Thokoza", "Ekurhuleni", "1426", 1.2),
    ("Vosloorus", "Ekurhuleni", "1475", 1.5),
    ("Germiston", "Ekurhuleni", "1401", 1.0),
    ("Benoni", "Ekurhuleni", "1501", 1.0),
    ("Mamelodi", "Pretoria", "0122", 2.0),
    ("Soshanguve", "Pretoria", "0152", 2.0),
)

# Cellular prefixes in use in South Africa (after the leading 0 / +27).
MOBILE_PREFIXES: Final[tuple[int, ...]] = (
    60, 61, 62, 63, 64, 65, 66, 67, 68, 71, 72, 73, 74, 76, 78, 79, 81, 82, 83, 84,
)
