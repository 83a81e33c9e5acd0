"""Word pools of the synthetic review benchmark: categories, aspects, and the personal lexicons users draw from.

Pure data. Pools are large on purpose: users draw their habits from them, so two users rarely share
a lexicon, and reviews are assembled from many templates with many fillers, so no single template
scores well against the targets. Everything is ASCII so that lower-casing keeps character offsets.
"""

from __future__ import annotations

CATEGORIES: dict[str, dict] = {
    "Books": {
        "main_category": "Books",
        "categories": ["Books", "Literature & Fiction"],
        "noun": "book",
        "creator_role": "author",
        "genres": ["mystery novel", "fantasy saga", "historical novel", "literary novel", "thriller",
                   "memoir", "science fiction novel", "romance novel", "short story collection", "biography",
                   "horror novel", "coming-of-age story"],
        "settings": ["a fishing village in Maine", "post-war Berlin", "a generation ship", "the Scottish Highlands",
                     "a boarding school in Vermont", "1920s Shanghai", "a drowned future London", "rural Kenya",
                     "a lighthouse off Norway", "a mining town in Chile", "the court of a dying empire",
                     "suburban Ohio", "a research base in Antarctica", "Renaissance Florence"],
        "aspects": ["plot", "characters", "prose", "pacing", "world-building", "ending", "dialogue", "research"],
        "title_adj": ["Silent", "Hollow", "Last", "Crimson", "Winter", "Broken", "Hidden", "Salt", "Paper",
                      "Distant", "Burning", "Quiet", "Glass", "Iron", "Forgotten", "Northern"],
        "title_noun": ["Harbor", "Orchard", "Kingdom", "Letters", "Tide", "Lantern", "Garden", "Archive",
                       "Crown", "Map", "Daughters", "Bridge", "Season", "Song", "River", "House"],
        "details": {"Publisher": ["Harrow Press", "Bluefin Books", "Greywell", "Oakridge House"],
                    "Language": ["English"], "Print length": ["288 pages", "352 pages", "416 pages", "512 pages"]},
        "formats": ["Paperback", "Hardcover", "Kindle Edition"],
    },
    "Movies_and_TV": {
        "main_category": "Movies & TV",
        "categories": ["Movies & TV", "Genre for Featured Categories"],
        "noun": "movie",
        "creator_role": "director",
        "genres": ["crime drama", "space opera", "romantic comedy", "war film", "documentary", "animated feature",
                   "psychological thriller", "western", "period drama", "heist movie", "horror film", "musical"],
        "settings": ["a casino in Macau", "a Mars colony", "wartime Normandy", "a Texas border town",
                     "a Manhattan newsroom", "an Alpine ski resort", "a Mumbai film studio", "a submarine",
                     "a Parisian bakery", "a prison in Alabama", "a floating city", "a Tokyo arcade",
                     "a cattle ranch in Montana", "a haunted Irish estate"],
        "aspects": ["acting", "cinematography", "soundtrack", "story", "pacing", "dialogue", "special effects",
                    "ending"],
        "title_adj": ["Dark", "Final", "Golden", "Midnight", "Red", "Lost", "Wild", "Electric", "Cold", "Secret",
                      "Endless", "Savage", "Neon", "Fallen", "Rising", "Lucky"],
        "title_noun": ["Horizon", "Protocol", "Run", "Frontier", "Heist", "Signal", "Empire", "Witness", "Storm",
                       "Carnival", "Sky", "Hunter", "Requiem", "Border", "Dynasty", "Code"],
        "details": {"Director": [], "Run time": ["94 minutes", "112 minutes", "128 minutes", "141 minutes"],
                    "Language": ["English"], "Rated": ["PG", "PG-13", "R"]},
        "formats": ["DVD", "Blu-ray", "Prime Video"],
    },
    "CDs_and_Vinyl": {
        "main_category": "Digital Music",
        "categories": ["CDs & Vinyl"],
        "noun": "album",
        "creator_role": "artist",
        "genres": ["indie rock record", "jazz album", "folk album", "synth-pop record", "blues record",
                   "hip hop album", "classical recording", "country album", "metal album", "soul record",
                   "ambient album", "punk record"],
        "settings": ["a converted barn in Wales", "a Nashville basement", "a Berlin club", "Abbey Road",
                     "a cabin in Oregon", "a Lagos studio", "a church in Reykjavik", "a Brooklyn loft",
                     "a Detroit warehouse", "a villa in Lisbon", "a Montreal rehearsal space",
                     "a Memphis garage", "a desert ranch in Joshua Tree", "a Havana ballroom"],
        "aspects": ["vocals", "production", "lyrics", "melodies", "guitar work", "rhythm section", "mixing",
                    "album flow"],
        "title_adj": ["Blue", "Velvet", "Electric", "Little", "Golden", "Paper", "Slow", "Bright", "Lonesome",
                      "Wild", "Static", "Holy", "Tender", "Copper", "Sunday", "Echo"],
        "title_noun": ["Hours", "Motel", "Ghosts", "Radio", "Waves", "Parade", "Highway", "Fever", "Machines",
                       "Hymns", "Satellites", "Youth", "Island", "Mornings", "Circuit", "Rain"],
        "details": {"Label": ["Northcross Records", "Fathom", "Lowlight", "Grain Audio"],
                    "Number of discs": ["1", "2"], "Language": ["English"]},
        "formats": ["Audio CD", "Vinyl", "MP3 Music"],
    },
}

FIRST_NAMES = ["Ada", "Bruno", "Clara", "Dev", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemi", "Liam",
               "Mara", "Nikhil", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tess", "Uma", "Viktor", "Wen", "Yara"]
LAST_NAMES = ["Abbott", "Brandt", "Castillo", "Duarte", "Eriksen", "Fontaine", "Gallo", "Hargrove", "Ishikawa",
              "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quintero", "Rahman",
              "Sorensen", "Tanaka", "Umarov", "Varga", "Whitfield", "Zeller"]

# Judgements of an aspect, by how good the item is at it (item-driven: the description says so).
JUDGEMENT = {
    "strong": ["superb", "excellent", "outstanding", "gorgeous", "masterful", "brilliant", "spot on", "terrific"],
    "fine": ["decent", "solid", "fine", "competent", "serviceable", "pleasant", "respectable", "okay"],
    "weak": ["flat", "clumsy", "uneven", "forgettable", "muddled", "thin", "disappointing", "sloppy"],
}

# Personal lexicon pools: each user draws a few entries and keeps using them.
OPENERS = ["Okay, so", "Long story short:", "Right then.", "First things first:", "Full disclosure:",
           "Here's the deal:", "Let me be blunt:", "Quick thoughts:", "Well, well, well.", "So here we go again.",
           "Alright folks,", "Confession time:", "Bottom line up front:", "Hot take incoming:",
           "Not gonna lie,", "Deep breath.", "Story time:", "Straight to it:", "Hear me out:",
           "Brace yourselves:", "Gather round:", "Fair warning:", "In a nutshell:", "Real talk:",
           "Pardon the rant:", "Hello fellow shoppers!", "Greetings from the couch.", "Another one for the pile."]

INTENSIFIERS = ["wickedly", "properly", "thoroughly", "ridiculously", "genuinely", "decidedly", "seriously",
                "downright", "hugely", "insanely", "remarkably", "mighty", "awfully", "wildly", "terribly",
                "supremely", "exceedingly", "utterly", "plainly", "frankly", "bloody", "stupendously",
                "unreasonably", "outrageously"]

SIGNATURE_HEADS = ["pure", "utter", "absolute", "certified", "total", "grade-A", "vintage", "textbook",
                   "bona fide", "top-shelf", "gold-star", "five-alarm", "old-school", "low-key", "next-level"]
SIGNATURE_TAILS = ["magic", "comfort food", "ear candy", "eye candy", "catnip", "rocket fuel", "sunshine",
                   "chaos", "brain food", "soul food", "popcorn fun", "heartbreak", "goosebumps",
                   "time machine", "slow burn", "wild ride", "candy floss", "treasure chest"]
SIGNATURE_PHRASES = ["chef's kiss", "no notes", "a keeper for the shelf", "worth every penny", "color me impressed",
                     "not my cup of tea", "hits different", "solid as a rock", "bang for the buck", "top drawer",
                     "a mixed bag", "ten out of ten", "my jam", "right up my alley", "a grower, not a shower",
                     "smooth as butter", "a real head-scratcher", "easy like Sunday morning", "bless its heart",
                     "cooking with gas", "the whole enchilada", "swings and roundabouts", "meat and potatoes",
                     "clean as a whistle", "a tough nut", "on the nose", "off the charts"]

SIGN_OFFS = ["Happy reading!", "Just my two cents.", "Your mileage may vary.", "Peace out.", "That's all, folks.",
             "Thanks for reading my review.", "Over and out.", "Rant over.", "Carry on.", "You have been warned.",
             "Take it or leave it.", "Stay curious.", "Until next time.", "End of transmission.",
             "Make of that what you will.", "Cheers from {city}."]
CITIES = ["Leeds", "Tucson", "Porto", "Halifax", "Duluth", "Ghent", "Perth", "Boise", "Cork", "Eugene"]

# Frames in which a user talks about an aspect they care about; each user keeps two.
ASPECT_FRAMES = [
    ("As usual, the {aspect} is what I judge first, and it was {intens} ", "."),
    ("You know me, I'm all about the {aspect}: {intens} ", " this time."),
    ("For me it always comes down to the {aspect}, which felt {intens} ", "."),
    ("My pet subject, the {aspect}, came out {intens} ", "."),
    ("Regulars know I obsess over the {aspect}; here it was {intens} ", "."),
    ("Judging by the {aspect} alone, my usual yardstick, I'd call it {intens} ", "."),
    ("Anyone who follows my reviews knows the {aspect} makes or breaks it, and this was {intens} ", "."),
    ("Once again I went straight for the {aspect}, {intens} ", " as it turned out."),
    ("The {aspect}, always my first checkpoint, was {intens} ", "."),
    ("If you care about the {aspect} like I do, it is {intens} ", "."),
]

# Item-driven sentences: predictable from the item's metadata alone.
ITEM_FRAMES = [
    "This {genre} from {creator} is set in {setting}.",
    "{creator}'s {genre} takes you to {setting}.",
    "The {strength} in {title} is {strong}.",
    "{title} gets its {strength} right, which is {strong}.",
    "Where it stumbles is the {weakness}, which is {weak}.",
    "The {weakness} is {weak}, sadly.",
    "Set in {setting}, it leans on its {strength}.",
    "It is a {genre} through and through.",
    "You can tell {creator} cared about the {strength}.",
    "The {strength} and the {strength2} carry the whole {noun}.",
    "{creator} clearly knows {setting} inside out.",
    "Expect a {genre} with {strong} {strength} and a {weak} {weakness}.",
    "Fans of {creator} will find the {strength} as {strong} as ever.",
    "Between the {strength} and the {strength2}, {title} earns its place.",
    "{title} never quite fixes its {weakness}.",
    "As {genre}s go, this one is heavy on {strength}.",
    "The choice of {setting} as a backdrop pays off.",
    "{creator} lets the {strength2} do a lot of the work here.",
]

# Generic sentences: about neither this item nor this user.
GENERIC_FRAMES = [
    "I {got} this {when}.", "It arrived {arrival}.", "{verdict_open}, it does what it says.",
    "I {got} it {when} and finished it {speed}.", "The packaging was {packaging}.",
    "Price-wise it was {price}.", "I would {recommend} it to {audience}.", "It took me a while to get into it.",
    "My {relative} borrowed it right after me.", "I had seen it mentioned {where}.",
    "There is not much more to say.", "It is the kind of thing you {use} on a {day}.",
    "Overall, {overall}.", "It sat on my shelf for a while before I tried it.",
    "My {relative} had warned me about the hype.", "I came in with {expect} expectations.",
    "Worth noting that I {got} the {edition} version.", "This was my {nth} purchase in this category this year.",
    "I went back and forth on the rating.", "Friends keep asking me about it.",
    "We {use} it {when} as a family.", "The first impression was {impression}.",
    "It did not change my life, but that is fine.", "Customer service was {service} when I asked a question.",
]
GENERIC_FILLS = {
    "got": ["picked up", "ordered", "bought", "grabbed", "received"],
    "when": ["last month", "on a whim", "for a long trip", "after a friend's tip", "during a sale", "as a gift"],
    "arrival": ["on time", "a day early", "well packed", "a bit late", "in perfect shape"],
    "verdict_open": ["All in all", "In the end", "For the most part", "On balance"],
    "speed": ["in a weekend", "over a few evenings", "in one sitting", "within a week"],
    "packaging": ["fine", "a little dented", "simple and sturdy", "excessive", "nothing special"],
    "price": ["fair", "a bargain", "a little steep", "about what I expected"],
    "recommend": ["recommend", "happily suggest", "point"],
    "audience": ["most people", "newcomers", "anyone curious", "my friends", "fans of the genre"],
    "relative": ["sister", "brother", "neighbor", "dad", "roommate", "aunt"],
    "where": ["online", "in a magazine", "on a podcast", "by a coworker", "in a forum"],
    "use": ["enjoy", "put on", "pick up", "come back to"],
    "day": ["rainy Sunday", "long commute", "quiet evening", "lazy afternoon"],
    "expect": ["low", "high", "modest", "no real", "sky-high"],
    "edition": ["discounted", "newer", "older", "imported", "standard"],
    "nth": ["second", "third", "fifth", "first"],
    "impression": ["mixed", "strong", "lukewarm", "good", "odd"],
    "service": ["helpful", "slow", "friendly", "quick"],
    "overall": ["a fair experience", "time well spent", "about what I hoped", "not bad at all", "worth a look"],
}

VERDICTS = {  # by rating: the rating is given in the prompt, so this is predictable from x
    1: ["I cannot recommend it.", "A real letdown.", "I regret this one."],
    2: ["Mostly a miss for me.", "Not great, unfortunately.", "Below my expectations."],
    3: ["A middling experience.", "Some good, some bad.", "It was fine, nothing more."],
    4: ["A very good one.", "I enjoyed it a lot.", "Easy to recommend."],
    5: ["An absolute favorite.", "Couldn't ask for more.", "A must-have."],
}

TITLE_FRAMES = {
    1: ["Skip it", "Very disappointing", "Not for me", "Waste of time"],
    2: ["Meh", "Had potential", "Underwhelming", "Not quite there"],
    3: ["Decent enough", "Mixed feelings", "Fine for a rainy day", "Middle of the road"],
    4: ["Really good", "Solid pick", "Enjoyed it", "Recommended"],
    5: ["Loved it", "Five stars", "Fantastic", "A new favorite"],
}
