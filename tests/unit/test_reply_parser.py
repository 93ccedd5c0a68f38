from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.services.reply_parser import LABELS, Reply, understand

C, D, OUT, IN, H, U = (
    Reply.CONFIRM,
    Reply.DECLINE,
    Reply.OPT_OUT,
    Reply.OPT_IN,
    Reply.HELP,
    Reply.UNKNOWN,
)

CASES = [
    # Confirm: French
    ("oui", C),
    ("OUI", C),
    ("Oui.", C),
    ("Oui!!", C),
    ("ouii", C),
    ("ouiii", C),
    ("  oui  ", C),
    ("Ouais", C),
    ("o", C),
    ("O", C),
    ("1", C),
    ("1.", C),
    ("Ok", C),
    ("OK merci", C),
    ("okkk 👍", C),
    ("oui 👍", C),
    ("👍", C),
    ("👍🏽", C),
    ("✅", C),
    ("👌👌", C),
    ("🙂", C),
    ("Ok je serai là !", C),
    ("Je confirme ma présence", C),
    ("je confirme", C),
    ("Présent", C),
    ("présente", C),
    ("Présent(e)", C),
    ("d'accord", C),
    ("D’accord, à jeudi !", C),
    ("daccord", C),
    ("dac", C),
    ("ça marche", C),
    ("Ca marche merci", C),
    ("Avec plaisir", C),
    ("avec plaisir 😊", C),
    ("C'est noté je viens", C),
    ("Bonjour, oui je serai là avec plaisir.\nMerci beaucoup et à bientôt", C),
    ("J'y serai", C),
    ("oui pas de souci", C),
    ("Pas de problème, je viendrai", C),
    ("Bien sûr !", C),
    ("Parfait merci", C),
    ("Oui nous serons 2", C),
    ("Oui je serai là mais j'arriverai vers 10h", C),
    ("Je suis dispo", C),
    # Confirm: English
    ("yes", C),
    ("Yes!", C),
    ("yep", C),
    ("Yeah sure", C),
    ("Sure, I'll be there", C),
    ("no problem, see you there", C),
    ("Can't wait!", C),
    # Decline: French
    ("non", D),
    ("NON", D),
    ("Non merci", D),
    ("non merci 🙂", D),
    ("nan", D),
    ("nonnn", D),
    ("n", D),
    ("2", D),
    ("Désolé", D),
    ("désolée 😢", D),
    ("pas dispo", D),
    ("Pas dispo ce jour-là", D),
    ("je ne pourrai pas", D),
    ("Je ne pourrai pas venir", D),
    ("je pourrai pas venir dsl", D),
    ("je ne pourrai finalement pas venir", D),
    ("je ne serai pas là", D),
    ("Je n'y serai pas", D),
    ("je ne serai malheureusement pas là", D),
    ("pas possible", D),
    ("Malheureusement non", D),
    ("Désolé je ne peux pas", D),
    ("Empêché", D),
    ("empêchée ce jour-là, désolée", D),
    ("je ne viens pas", D),
    ("je ne confirme pas", D),
    ("Je ne suis plus disponible", D),
    ("pas ok", D),
    ("ça marche pas pour moi", D),
    ("Je dois annuler", D),
    ("👎", D),
    ("❌", D),
    ("Désolé je ne pourrai pas venir, j'ai un rendez-vous médical ce jour-là", D),
    ("Arrêt maladie, je ne pourrai pas venir", D),
    ("je ne peux pas m'arrêter de travailler ce jour-là", D),
    # Decline: English
    ("no", D),
    ("No thanks", D),
    ("nope", D),
    ("Sorry, I can't make it", D),
    ("cannot come", D),
    ("I'm not available", D),
    ("I won't be there", D),
    # Opt out
    ("STOP", OUT),
    ("stop", OUT),
    ("STOP!!!", OUT),
    ("Stop merci", OUT),
    ("stop svp", OUT),
    ("Stoppp", OUT),
    ("stop sms", OUT),
    ("STOP SMS 36180", OUT),
    ("arret", OUT),
    ("Arrêt", OUT),
    ("Arrêtez de m'envoyer des messages", OUT),
    ("Désinscription", OUT),
    ("Merci de me désinscrire", OUT),
    ("unsubscribe", OUT),
    ("Bonjour, STOP", OUT),
    ("Non, stop.", OUT),
    ("Je ne viendrai pas, stop merci", OUT),
    ("Merci mais STOP maintenant", OUT),
    ("je ne veux plus recevoir de sms", OUT),
    ("Ne plus recevoir", OUT),
    ("oui stop", OUT),
    # Opt back in
    ("START", IN),
    ("start", IN),
    ("Start sms", IN),
    ("unstop", IN),
    ("Start merci", IN),
    # Help
    ("aide", H),
    ("AIDE", H),
    ("Help", H),
    ("help!", H),
    ("info", H),
    ("Infos ?", H),
    ("?", H),
    ("??", H),
    ("aide svp", H),
    # Unknown: both yes and no
    ("oui mais non", U),
    ("yes no", U),
    ("ok non", U),
    ("Non, oui", U),
    ("👍👎", U),
    ("non 👍", U),
    # Unknown: questions, hedges, free text, noise
    ("c'est où ?", U),
    ("C'est où", U),
    ("oui, c'est à quelle heure ?", U),
    ("Oui ?", U),
    ("Qui êtes-vous ?", U),
    ("Peut-être", U),
    ("je ne sais pas encore", U),
    ("Oui peut-être, je vous redis", U),
    ("à confirmer", U),
    ("je pense que oui", U),
    ("not sure yet", U),
    ("Merci", U),
    ("bien reçu", U),
    ("", U),
    ("   ", U),
    ("🎉", U),
    ("nonobstant", U),
    ("11", U),
    ("Bonjour, je voulais savoir si le parking est accessible car je viens en voiture avec ma "
     "fille qui est en fauteuil roulant", U),
    ("Je ne peux pas arrêter de penser à cet atelier", D),
    ("je ne veux pas me désinscrire, je veux changer de date", U),
]  # fmt: skip


@pytest.mark.parametrize("text,expected", CASES)
def test_understand(text: str, expected: Reply) -> None:
    assert understand(text) is expected


def test_every_reply_is_covered_and_labelled() -> None:
    assert {expected for _, expected in CASES} == set(Reply)
    assert LABELS[Reply.OPT_OUT] == "Désinscription (STOP)"
    assert Reply.UNKNOWN.label == "À lire"
    assert all(reply.label for reply in Reply)
    assert Reply("opt_out") is Reply.OPT_OUT


# --- Properties ---------------------------------------------------------------------------

KEYWORDS = [
    ("oui", C),
    ("ok", C),
    ("yes", C),
    ("d'accord", C),
    ("je serai la", C),
    ("avec plaisir", C),
    ("present", C),
    ("o", C),
    ("1", C),
    ("non", D),
    ("nan", D),
    ("no", D),
    ("pas dispo", D),
    ("desole", D),
    ("je ne pourrai pas", D),
    ("2", D),
    ("stop", OUT),
    ("arret", OUT),
    ("desinscription", OUT),
    ("unsubscribe", OUT),
    ("start", IN),
    ("unstop", IN),
    ("aide", H),
    ("help", H),
    ("info", H),
]
_ACCENTS = {"a": "àâá", "e": "éèêë", "i": "îïí", "o": "ôöó", "u": "ùûü", "c": "ç"}
_DECOR = st.text(alphabet=" \t\n.,;:!…-*\"'()«»", max_size=5)


@st.composite
def _disguise(draw: st.DrawFn, word: str) -> str:
    """The word with random case and accents on its letters."""
    out = []
    for ch in word:
        if ch in _ACCENTS and draw(st.booleans()):
            ch = draw(st.sampled_from(_ACCENTS[ch]))
        out.append(ch.upper() if draw(st.booleans()) else ch)
    return "".join(out)


@given(data=st.data(), case=st.sampled_from(KEYWORDS))
def test_case_accents_and_punctuation_do_not_matter(
    data: st.DataObject, case: tuple[str, Reply]
) -> None:
    word, expected = case
    text = data.draw(_DECOR) + data.draw(_disguise(word)) + data.draw(_DECOR)
    assert understand(text) is expected


@given(
    word=st.sampled_from(["oui", "non", "ok", "yes", "stop", "nan"]),
    repeat=st.integers(1, 6),
    bang=st.text(alphabet="!.", max_size=4),
)
def test_stretched_letters_do_not_matter(word: str, repeat: int, bang: str) -> None:
    assert understand(word + word[-1] * repeat + bang) is understand(word)


@given(
    stop=_disguise("stop"),
    sep=st.sampled_from([" ", "!", ".", ",", "\n", " !!! ", "-"]),
    rest=st.text(max_size=60),
)
def test_anything_starting_with_stop_is_opt_out(stop: str, sep: str, rest: str) -> None:
    assert understand(stop + sep + rest) is Reply.OPT_OUT


@given(st.text(max_size=200))
def test_any_text_gets_an_answer(text: str) -> None:
    assert understand(text) in set(Reply)
