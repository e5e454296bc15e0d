"""Part 3, the assistant: solutions, and wrong answers the checkers must reject."""

import torch

from course_lib.chat import encode_chat


# beyond01.ex1 ---------------------------------------------------------------------------
def assistant_mask(ids, assistant_id, end_id):
    """True for the assistant's tokens: after its marker, up to and including the <|end|> that closes its turn."""
    mask, inside = [], False
    for i in ids:
        mask.append(inside)  # the marker itself is the template's: False, since inside is still False
        if i == assistant_id:
            inside = True  # the assistant's turn starts after its marker
        elif i == end_id:
            inside = False  # the <|end|> itself was appended as True above
    return mask


# beyond01.ex2 ---------------------------------------------------------------------------
def fit_history(tok, messages, room):
    """The newest whole messages whose template, with the generation prompt, fits in room ids."""
    for start in range(len(messages)):  # leave out 0, 1, 2, ... of the oldest messages
        ids, _ = encode_chat(tok, messages[start:], add_generation_prompt=True)
        if len(ids) <= room:
            return ids, start
    ids, _ = encode_chat(tok, messages[-1:], add_generation_prompt=True)
    return ids[-room:], len(messages) - 1  # the newest alone is too long: its last room ids


# beyond01.ex3 ---------------------------------------------------------------------------
@torch.no_grad()
def answer_log_prob(model, prompt_ids, answer_ids):
    """log p(answer | prompt) = the sum over the answer's tokens of log p(token | everything before it)."""
    ids = list(prompt_ids) + list(answer_ids)
    logits, _ = model(torch.tensor([ids[:-1]]))  # (1, T - 1, V): the last token predicts nothing
    log_probs = torch.log_softmax(logits[0].double(), dim=-1)  # (T - 1, V)
    n = len(prompt_ids)
    predicted = log_probs[n - 1 :]  # (len(answer), V): position n - 1 predicts the answer's first token
    return float(predicted.gather(1, torch.tensor(answer_ids)[:, None]).sum())


# beyond01.ex4 ---------------------------------------------------------------------------
# tiny_sft({}) = 0.00: the defaults reverse none of the 150 held-out strings (target 0.40).
# The mask alone is not enough at width 32 (0.01 after 300 steps, 0.02 after 500); width 64 with the mask: 0.53
# after 300 steps, 1.00 after 500 (lr 1e-3; other seeds 0.40, 0.85, 1.00). Without the mask, 500 steps at width 64
# stay at 0.00-0.08 whatever the rate (5e-4 ... 3e-3). A rate of 2e-3 with a warm-up of 50 steps is the steadiest
# across seeds (1.00; seeds 1 to 6: 0.74, 1.00, 0.54, 1.00, 1.00, 1.00).
TINY_SFT_SETTINGS = {"mask": True, "n_embd": 64, "steps": 500, "lr": 2e-3, "warmup_iters": 50}
# end beyond01.ex4

SOLUTIONS = {
    "beyond01.ex1": assistant_mask,
    "beyond01.ex2": fit_history,
    "beyond01.ex3": answer_log_prob,
    "beyond01.ex4": TINY_SFT_SETTINGS,
}


# ---------------------------------------------------------------- wrong answers
def _mask_with_marker(ids, assistant_id, end_id):  # the <|assistant|> marker counted as the assistant's
    mask = assistant_mask(ids, assistant_id, end_id)
    return [m or i == assistant_id for m, i in zip(mask, ids)]


def _mask_without_end(ids, assistant_id, end_id):  # the closing <|end|> left out: the model never learns to stop
    mask = assistant_mask(ids, assistant_id, end_id)
    return [m and i != end_id for m, i in zip(mask, ids)]


def _mask_after_first_reply(ids, assistant_id, end_id):  # never closes: every token after the first marker
    mask, inside = [], False
    for i in ids:
        mask.append(inside)
        inside = inside or i == assistant_id
    return mask


def _mask_not_user(ids, assistant_id, end_id):  # "all but the user's turns": markers and the generation prompt too
    user_id = assistant_id - 1  # the template's tokens come in the order <|user|>, <|assistant|>, <|end|>
    mask, user = [], False
    for i in ids:
        user = user or i == user_id
        mask.append(not user)
        if i == end_id:
            user = False
    return mask


def _fit_drop_newest(tok, messages, room):  # keeps the oldest messages instead of the newest
    for stop in range(len(messages), 0, -1):
        ids, _ = encode_chat(tok, messages[:stop], add_generation_prompt=True)
        if len(ids) <= room:
            return ids, len(messages) - stop
    ids, _ = encode_chat(tok, messages[:1], add_generation_prompt=True)
    return ids[:room], len(messages) - 1


def _fit_strict(tok, messages, room):  # < instead of <=: a conversation that fills the room exactly is cut
    return fit_history(tok, messages, room - 1) if room > 1 else fit_history(tok, messages, room)


def _fit_no_prompt(tok, messages, room):  # measures the history without the generation prompt's marker
    for start in range(len(messages)):
        ids, _ = encode_chat(tok, messages[start:])
        if len(ids) <= room:
            return encode_chat(tok, messages[start:], add_generation_prompt=True)[0][-room:], start
    ids, _ = encode_chat(tok, messages[-1:], add_generation_prompt=True)
    return ids[-room:], len(messages) - 1


def _fit_cut_left_anywhere(tok, messages, room):  # cuts the whole conversation mid-message instead of whole messages
    ids, _ = encode_chat(tok, messages, add_generation_prompt=True)
    kept = ids[-room:]
    return kept, 0 if len(ids) <= room else len(messages) - 1


def _fit_cut_right(tok, messages, room):  # the newest message too long: keeps its first room ids, not its last
    ids, dropped = fit_history(tok, messages, room)
    whole, _ = encode_chat(tok, messages[-1:], add_generation_prompt=True)
    return (whole[:room], dropped) if len(whole) > room else (ids, dropped)


@torch.no_grad()
def _log_probs(model, prompt_ids, answer_ids):
    ids = list(prompt_ids) + list(answer_ids)
    return torch.log_softmax(model(torch.tensor([ids[:-1]]))[0][0].double(), dim=-1), len(prompt_ids)


def _score_off_by_one(model, prompt_ids, answer_ids):  # the logits at the answer's own positions: one too late
    log_probs, n = _log_probs(model, prompt_ids, answer_ids + [answer_ids[-1]])
    return float(log_probs[n:].gather(1, torch.tensor(answer_ids)[:, None]).sum())


def _score_prompt_too(model, prompt_ids, answer_ids):  # sums over every predicted token, the prompt's included
    log_probs, _ = _log_probs(model, prompt_ids, answer_ids)
    targets = torch.tensor(list(prompt_ids) + list(answer_ids))[1:]
    return float(log_probs.gather(1, targets[:, None]).sum())


def _score_mean(model, prompt_ids, answer_ids):  # the mean over the answer's tokens, not the total
    return answer_log_prob(model, prompt_ids, answer_ids) / len(answer_ids)


def _score_without_first(model, prompt_ids, answer_ids):  # forgets the first answer token (predicted by the prompt)
    log_probs, n = _log_probs(model, prompt_ids, answer_ids)
    return float(log_probs[n:].gather(1, torch.tensor(answer_ids[1:])[:, None]).sum())


@torch.no_grad()
def _score_raw_logits(model, prompt_ids, answer_ids):  # sums logits: no log_softmax
    ids = list(prompt_ids) + list(answer_ids)
    logits = model(torch.tensor([ids[:-1]]))[0][0]
    return float(logits[len(prompt_ids) - 1 :].gather(1, torch.tensor(answer_ids)[:, None]).sum())


@torch.no_grad()
def _score_whole_sequence(model, prompt_ids, answer_ids):  # feeds every id: one too many at a full window
    ids = list(prompt_ids) + list(answer_ids)
    log_probs = torch.log_softmax(model(torch.tensor([ids]))[0][0].double(), dim=-1)  # (T, V)
    n = len(prompt_ids)
    return float(log_probs[n - 1 : -1].gather(1, torch.tensor(answer_ids)[:, None]).sum())


WRONG = {
    "beyond01.ex1": [_mask_with_marker, _mask_without_end, _mask_after_first_reply, _mask_not_user,
                     lambda ids, assistant_id, end_id: [i != assistant_id for i in ids]],
    "beyond01.ex2": [_fit_drop_newest, _fit_strict, _fit_no_prompt, _fit_cut_left_anywhere, _fit_cut_right],
    "beyond01.ex3": [_score_off_by_one, _score_prompt_too, _score_mean, _score_without_first, _score_raw_logits,
                     _score_whole_sequence],
    "beyond01.ex4": [{},  # the defaults: no reversal right
                     {"n_embd": 64, "steps": 500, "lr": 2e-3, "warmup_iters": 50},  # the recipe without the mask
                     {"mask": True},  # the mask at the default width and steps
                     {"mask": True, "n_embd": 128},  # over the width budget
                     {"mask": True, "steps": 1000},  # over the step budget
                     {"mask": "yes"}],  # not a bool
}
