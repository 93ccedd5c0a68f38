"""Understanding a prospect's free-text SMS reply, in French or English.

``understand(text)`` is pure: no database, no Flask. It returns a :class:`Reply`; the caller
(services.replies) decides what each answer changes. ``Reply.UNKNOWN`` changes nothing by
itself: it becomes a "to read" task for a human.

How a message is read:

1. Normalise: NFKD, accents dropped, lower case, ’ ‘ ` mapped to ', every punctuation mark a
   separator; runs of a repeated letter squeezed ("ouiii" = "oui", "stoppp" = "stop"); the
   emoji that carry a meaning are kept as tokens (skin tones ignored), other emoji dropped.
2. Opt-out wins over everything (STOP must always work): the message begins with stop, arret,
   desinscription, unsubscribe, "ne plus recevoir"... (after an optional greeting or "non"),
   or ends with "stop", or shouts the word STOP in capitals anywhere, or contains an explicit
   phrase (desinscrire, "stop sms", "plus de sms"...) not preceded by a negation. A "stop" or
   "arret" in the middle of a sentence is *not* an opt-out ("je ne peux pas m'arreter"), nor is
   a message beginning with "arret maladie" / "arret de travail". The carrier keywords end,
   quit, cancel, stopall count only as the whole message.
3. Opt-in: the message begins (after an optional greeting) with start, unstop or "start sms".
4. Help: "?" alone, or only help words (aide, help, info) plus politeness.
5. A question ("?" or a question word such as "quelle heure", "c'est ou") or a hedge
   ("peut-etre", "je ne sais pas", "a confirmer") is for a human: unknown.
6. Confirm and decline are whole words or phrases, longest phrase first ("pas de souci" is a
   yes, "pas dispo" a no; "non" never matches inside "nonobstant"). A yes word next to a
   negation turns into a no ("je ne viens pas", "pas ok", "can't be there"), and so does a
   modal verb followed by pas/plus ("je ne pourrai finalement pas"). "o", "y", "1" (yes) and
   "n", "2" (no) count only as the whole message.
7. Both a yes and a no, or more than a handful of words that carry no signal (free text),
   give unknown. Smileys such as 🙂 are a yes only when nothing says no.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Reply(StrEnum):
    CONFIRM = "confirm"
    DECLINE = "decline"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS: dict[Reply, str] = {
    Reply.CONFIRM: "Confirmation",
    Reply.DECLINE: "Refus",
    Reply.OPT_OUT: "Désinscription (STOP)",
    Reply.OPT_IN: "Réinscription (START)",
    Reply.HELP: "Demande d'aide",
    Reply.UNKNOWN: "À lire",
}

# --- Vocabulary (written naturally; compiled with the same normalisation as the messages) ---

STRONG_POSITIVE_EMOJI = "👍✅👌🆗✔☑"
SOFT_POSITIVE_EMOJI = "🙂😊😀😃😄😁😉☺🥰😍❤"
NEGATIVE_EMOJI = "👎❌✖🚫⛔"

CONFIRM_PHRASES = (
    # French
    "oui", "ouai", "ouais", "ouep", "ouip", "oue", "ui", "wi", "ok", "okay", "okey", "oki", "okok",
    "d'accord", "daccord", "dac", "je suis d'accord", "je confirme", "confirme", "confirmé",
    "confirmée", "confirmer", "confirmation", "présent", "présente", "présents", "présentes",
    "je serai là", "serai là", "serai présent", "serai présente", "serons là", "y serai",
    "y serons", "je viens", "viens", "viendrai", "viendrons", "je participe", "participerai",
    "participerons", "avec plaisir", "volontiers", "bien sûr", "bien entendu", "évidemment",
    "absolument", "entendu", "parfait", "super", "génial", "nickel", "top", "cool", "impec",
    "ça marche", "ca marche", "ça me va", "ça roule", "pas de souci", "pas de soucis",
    "pas de problème", "pas de pb", "sans problème", "sans souci", "aucun souci",
    "aucun problème", "dispo", "disponible", "accepte", "j'accepte", "valide", "go",
    # English
    "yes", "yeah", "yep", "yup", "sure", "of course", "confirm", "confirmed",
    "i confirm", "be there", "see you", "see you there", "count me in", "sounds good", "great",
    "perfect", "fine", "attend", "will attend", "come", "coming", "available", "no problem",
    "can't wait", "absolutely", "definitely",
)  # fmt: skip

DECLINE_PHRASES = (
    # French
    "non", "nan", "nop", "non merci", "désolé", "désolée", "désolés", "dsl", "navré", "navrée",
    "malheureusement", "hélas", "empêché", "empêchée", "empêchement", "indispo", "indisponible",
    "impossible", "absent", "absente", "annuler", "annule", "annulé", "annulation", "pas dispo",
    "pas disponible", "pas disponibles", "pas libre", "pas possible", "pas là", "pas présent",
    "pas présente", "pas pour moi", "sans moi", "pas du tout", "pas intéressé",
    "pas intéressée", "plus intéressé", "plus intéressée", "pense pas", "crois pas",
    "je pense pas", "je crois pas", "me va pas",
    # English
    "no", "nope", "nah", "no thanks", "no thank you", "sorry", "unfortunately", "can't",
    "cant", "cannot", "can not", "won't", "wont", "will not", "couldn't", "unable",
    "not available", "unavailable", "not able", "not coming", "not interested", "cancel",
    "decline",
)  # fmt: skip

HEDGE_PHRASES = (
    "peut-être", "peut etre", "peutetre", "je sais pas", "sais pas", "ne sais pas", "je pense",
    "probablement", "normalement", "a priori", "à confirmer", "confirmerai", "je vous dirai",
    "je verrai", "on verra", "je vais voir", "tiens au courant", "tiendrai au courant",
    "reviens vers vous", "reviendrai vers vous", "sous réserve", "pas sûr", "pas sûre",
    "pas certain", "pas certaine", "pas encore", "maybe", "perhaps", "not sure", "don't know",
    "dunno", "not yet", "let you know", "will see",
)  # fmt: skip

QUESTION_PHRASES = (
    "c'est où", "c'est quand", "c'est quoi", "où ça", "quelle heure", "quel jour", "quelle date",
    "quelle adresse", "comment", "pourquoi", "combien", "quand", "quel", "quelle", "quels",
    "quelles", "est-ce que", "where", "when", "what", "how", "why", "which",
)  # fmt: skip

# Whole message only: too short to be trusted inside a sentence.
WHOLE_MESSAGE = {"o": "confirm", "y": "confirm", "1": "confirm", "n": "decline", "2": "decline"}

OPT_OUT_LEADS = (
    "stop", "arrêt", "arret", "arrêter", "arrêtez", "stop sms", "stopsms", "désinscription",
    "désinscrire", "désinscrivez", "désinscrivez-moi", "désabonner", "désabonnement",
    "unsubscribe", "unsub", "opt out", "optout", "ne plus recevoir", "je ne veux plus recevoir",
)  # fmt: skip
# Carrier keywords (Twilio opts the number out on these): only as the whole message.
OPT_OUT_WHOLE = ("stopall", "end", "quit", "cancel")
# Explicit enough to count anywhere in the message (unless a negation comes just before).
OPT_OUT_ANYWHERE = (
    "stop sms", "stopsms", "désinscription", "désinscrire", "désinscrivez", "désabonner",
    "désabonnement", "unsubscribe", "ne plus recevoir", "ne plus m'envoyer", "ne plus me contacter",
    "ne me contactez plus", "ne plus être contacté", "ne plus être contactée", "plus de sms",
    "opt out", "remove me",
)  # fmt: skip
OPT_OUT_NOT_AFTER_ARRET = ("maladie", "de travail")
OPT_IN_LEADS = ("start", "unstop", "start sms", "startsms", "restart")
HELP_WORDS = ("aide", "help", "info", "infos", "information", "informations", "renseignements")

# Words allowed around a keyword without making the message "free text".
GREETINGS = (
    "bonjour", "bonsoir", "salut", "coucou", "hello", "hi", "hey", "madame", "monsieur", "allo",
)  # fmt: skip
POLITENESS = ("merci", "svp", "stp", "please", "thanks", "thank you", "thx", "cordialement", "bien")
FILLER = (
    *GREETINGS, *POLITENESS,
    "je", "j", "moi", "me", "m", "vous", "nous", "on", "il", "elle", "y", "en", "le", "la", "les",
    "l", "un", "une", "des", "de", "d", "du", "au", "aux", "a", "et", "mais", "donc", "alors",
    "ce", "cet", "cette", "c", "ca", "est", "suis", "serai", "serons", "sera", "ai", "pour",
    "par", "avec", "sur", "chez", "tres", "beaucoup", "ma", "mon", "mes", "presence", "note",
    "bonne", "journee", "soiree", "bientot", "jour", "date", "rendez", "rdv", "atelier", "lab",
    "venir", "aussi", "bien", "e", "es", "ne", "n", "pas", "plus", "vraiment", "finalement",
    "i", "im", "s", "t", "you", "we", "the", "an", "and", "but", "so", "for", "with", "to",
    "at", "it", "is", "am", "will", "there", "see", "soon", "make", "not", "very", "much",
)  # fmt: skip

# A yes word becomes a no when one of these is right before it...
NEGATORS_BEFORE = ("ne", "n", "pas", "plus", "not", "never", "jamais", "t", "cannot", "cant")
# ...or right after it (possibly past one of the adverbs below).
NEGATORS_AFTER = ("pas", "plus", "jamais")
ADVERBS = ("finalement", "vraiment", "malheureusement", "hélas", "y", "en", "donc")
# A modal verb followed by pas/plus is a no: "je ne pourrai (finalement) pas".
MODAL_VERBS = (
    "pourrai", "pourrais", "pourrons", "pourra", "peux", "peut", "pouvons", "serai", "serons",
    "sera", "viendrai", "viendrons", "viens", "vais", "allons",
)  # fmt: skip
_MAX_FREE_WORDS = 6  # words with no meaning of their own beyond which a human must read

_POSITIVE, _SOFT, _NEGATIVE, _HEDGE, _QUESTION = "positive", "soft", "negative", "hedge", "question"

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "ʼ": "'", "´": "'", "œ": "oe"})
_IGNORED_MARKS = re.compile("[\U0001f3fb-\U0001f3ff\ufe0e\ufe0f\u200d]")  # skin tones, VS, ZWJ
_EMOJI = STRONG_POSITIVE_EMOJI + SOFT_POSITIVE_EMOJI + NEGATIVE_EMOJI
_TOKEN = re.compile(f"[a-z0-9]+|[{_EMOJI}]")
_REPEATED_LETTER = re.compile(r"([a-z])\1+")
_SHOUTED_STOP = re.compile(r"(?<!\w)STOP+(?!\w)")


def _fold(text: str) -> str:
    text = _IGNORED_MARKS.sub("", text.translate(_APOSTROPHES))
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _tokens(text: str) -> tuple[str, ...]:
    """Words (letters squeezed: 'ouiii' -> 'oui') and meaningful emoji, punctuation dropped."""
    return tuple(_REPEATED_LETTER.sub(r"\1", t) for t in _TOKEN.findall(_fold(text)))


def _phrases(*groups: tuple[str, ...]) -> frozenset[tuple[str, ...]]:
    return frozenset(_tokens(p) for group in groups for p in group if _tokens(p))


def _words(*groups: tuple[str, ...]) -> frozenset[str]:
    return frozenset(w for key in _phrases(*groups) for w in key)


def _lexicon() -> dict[tuple[str, ...], str]:
    lexicon: dict[tuple[str, ...], str] = {}
    for phrases, kind in (
        (QUESTION_PHRASES, _QUESTION),
        (CONFIRM_PHRASES, _POSITIVE),
        (DECLINE_PHRASES, _NEGATIVE),
        (HEDGE_PHRASES, _HEDGE),
    ):
        for key in _phrases(phrases):
            lexicon[key] = kind  # a later group wins a tie ("pas sur" is a hedge)
    for emoji, kind in (
        (STRONG_POSITIVE_EMOJI, _POSITIVE),
        (SOFT_POSITIVE_EMOJI, _SOFT),
        (NEGATIVE_EMOJI, _NEGATIVE),
    ):
        lexicon.update({(e,): kind for e in emoji})
    return lexicon


_LEXICON = _lexicon()
_LONGEST = max(len(k) for k in _LEXICON)
_OPT_OUT_LEADS = _phrases(OPT_OUT_LEADS)
_OPT_OUT_ANYWHERE = _phrases(OPT_OUT_ANYWHERE)
_NOT_AFTER_ARRET = _phrases(OPT_OUT_NOT_AFTER_ARRET)
_OPT_IN_LEADS = _phrases(OPT_IN_LEADS)
_OPT_OUT_WHOLE = _phrases(OPT_OUT_WHOLE)
_MODAL_VERBS = _words(MODAL_VERBS)
_NEGATORS_BEFORE = _words(NEGATORS_BEFORE)
_NEGATORS_AFTER = _words(NEGATORS_AFTER)
_ADVERBS = _words(ADVERBS)
_HELP_WORDS = _words(HELP_WORDS)
_LEAD_IN = _words(GREETINGS, POLITENESS, ("non", "no", "nan"))
_TRAILERS = _words(POLITENESS)
_FILLER = _words(FILLER)
_HELP_FILLER = _FILLER | {"besoin", "need", "sms"}
_WHOLE_MESSAGE = {_tokens(k): Reply(v) for k, v in WHOLE_MESSAGE.items()}
_STOP = ("stop",)


def _starts_with(words: tuple[str, ...], phrases: frozenset[tuple[str, ...]]) -> bool:
    return any(words[: len(p)] == p for p in phrases)


def _after_lead_in(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words after a leading greeting, politeness or "non" ("Bonjour, STOP")."""
    start = 0
    while start < len(words) and words[start] in _LEAD_IN:
        start += 1
    return words[start:]


def _is_opt_out(text: str, words: tuple[str, ...]) -> bool:
    if _SHOUTED_STOP.search(text):
        return True
    if words in _OPT_OUT_WHOLE:
        return True
    lead = _after_lead_in(words)
    if _starts_with(lead, _OPT_OUT_LEADS):
        arret = lead[0].startswith("aret")
        if not (arret and _starts_with(lead[1:], _NOT_AFTER_ARRET)):
            return True
    end = len(words)
    while end > 0 and words[end - 1] in _TRAILERS:
        end -= 1
    if end and words[end - 1 : end] == _STOP:
        return True
    for i in range(len(words)):
        for phrase in _OPT_OUT_ANYWHERE:
            if words[i : i + len(phrase)] == phrase:
                negated = {"pas", "not", "t", "jamais"} & set(words[max(0, i - 3) : i])
                if not negated:
                    return True
    return False


def _match(words: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """Greedy leftmost-longest phrase matches: (start, end, kind)."""
    matches: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        for size in range(min(_LONGEST, len(words) - i), 0, -1):
            kind = _LEXICON.get(words[i : i + size])
            if kind:
                matches.append((i, i + size, kind))
                i += size
                break
        else:
            i += 1
    return matches


def _signals(words: tuple[str, ...]) -> tuple[list[str], set[int]]:
    """The kind of every signal found, after negation, and the positions they cover."""
    matches = _match(words)
    owner: dict[int, str] = {j: kind for start, end, kind in matches for j in range(start, end)}

    def negator(j: int, allowed: frozenset[str]) -> bool:
        return 0 <= j < len(words) and words[j] in allowed and owner.get(j, _NEGATIVE) == _NEGATIVE

    def next_word(j: int) -> int:
        while j < len(words) and words[j] in _ADVERBS:
            j += 1
        return j

    kinds: list[str] = []
    for start, end, kind in matches:
        if kind in (_POSITIVE, _SOFT) and (
            negator(start - 1, _NEGATORS_BEFORE) or negator(next_word(end), _NEGATORS_AFTER)
        ):
            kind = _NEGATIVE
        kinds.append(kind)
    for j, word in enumerate(words):
        if word in _MODAL_VERBS and j not in owner:
            after = next_word(j + 1)
            if negator(after, _NEGATORS_AFTER) and after not in owner:
                kinds.append(_NEGATIVE)
    return kinds, set(owner)


def understand(text: str) -> Reply:
    """What a prospect's reply means: see the module docstring for the rules."""
    words = _tokens(text)
    if _is_opt_out(text, words):
        return Reply.OPT_OUT
    if _starts_with(_after_lead_in(words), _OPT_IN_LEADS):
        return Reply.OPT_IN
    question = "?" in _fold(text)
    if not words:
        return Reply.HELP if question else Reply.UNKNOWN
    meaningful = [w for w in words if w not in _HELP_FILLER]
    if meaningful and all(w in _HELP_WORDS for w in meaningful):
        return Reply.HELP
    if words in _WHOLE_MESSAGE and not question:
        return _WHOLE_MESSAGE[words]

    kinds, covered = _signals(words)
    if question or _QUESTION in kinds or _HEDGE in kinds:
        return Reply.UNKNOWN
    free = [w for j, w in enumerate(words) if j not in covered and w.isalnum()]
    if len([w for w in free if w not in _FILLER]) > _MAX_FREE_WORDS:
        return Reply.UNKNOWN
    positive, negative = _POSITIVE in kinds, _NEGATIVE in kinds
    if positive and negative:
        return Reply.UNKNOWN
    if negative:
        return Reply.DECLINE
    if positive or _SOFT in kinds:
        return Reply.CONFIRM
    return Reply.UNKNOWN
