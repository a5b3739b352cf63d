/*
 * keyd sealed volume: key lifecycle under crashes, drops, replays, a
 * man-in-the-middle and disk rollback. One volume, one chip.
 * See README.md for the abstractions, the properties and the step table.
 *
 * Build flags: -DLIVE makes the liveness configuration (honest network,
 * at most MAXFAULT crashes/drops, no rollback, forgery or MITM).
 */

#define NS    5		/* keyslots in the model header */
#define HIST  1		/* earlier header states the host keeps */
#ifdef LIVE
#define SESS  5
#define MAXFAULT 2
#elif defined(LIFECYCLE)
#define SESS  1		/* one handoff attempt: reruns are covered by the other configurations */
#else
#define SESS  3		/* handoff sessions (TLS connections) in all */
#endif

/* launches (who derives the passphrase that opens a keyslot) */
#define L0 0	/* empty keyslot */
#define LO 1	/* old version O: svn 2, this chip, signed */
#define LN 2	/* new version N: svn 3, this chip, signed */
#define LE 3	/* escrow: k admins */
#define LX 4	/* N's image on another chip */
#define LR 5	/* rogue image, in no manifest, this chip */
#define LD 6	/* older signed release, svn 1 (at N's floor), this chip */
#define LH 7	/* host-forged keyslot: any passphrase opens it (CVE-2025-59054) */
#define LM 8	/* peer tag: the host's man in the middle */
#define LV 9	/* revoked signed release: svn 0, below N's floor, this chip (never owns a slot) */

/* the revocation floor N's image pins (/etc/keyd/peer-svn-floor, min_peer_svn) */
#define FLOOR 1

/* token states */
#define TNONE 0	/* keyslot without a keyd token (crash between the writes) */
#define TACT  1
#define TPEN  2
#define TRET  3

/*
 * a keyslot and its token: owner(3) | token state(2) << 3 | tcb-1 << 5 |
 * fresh << 6 | revoked evidence << 7. A fresh keyslot opens with one-time
 * secrets O made in a handoff and wrapped to the owner's key (handoff
 * format 2); any other keyslot opens with the owner's sealing-derived
 * secret. A fresh pending token carries the evidence of the release that
 * made it (its genuine report and signed manifest): O's, or (bit 7) that of
 * LV, a revoked release.
 */
#define OWN(i)   (hdr[i] & 7)
#define TS(i)    ((hdr[i] >> 3) & 3)
#define TCB(i)   (((hdr[i] >> 5) & 1) + 1)
#define FRESH(i) ((hdr[i] >> 6) & 1)
#define MK(o, t, c) ((o) | ((t) << 3) | (((c) - 1) << 5))
#define MKF(o, t, c) (MK(o, t, c) | 64)
#define MKV(o, t, c) (MKF(o, t, c) | 128)
/* the release whose evidence a fresh pending token carries */
#define EVL(i)   (((hdr[i] >> 7) & 1) -> LV : LO)
/* the launch a token names; a forged token names N */
#define TFOR(i)  ((OWN(i) == LH) -> LN : OWN(i))

/* facts about launches (what a genuine report says) */
#define SVN(l)         (((l) == LO) -> 2 : ((((l) == LN) || ((l) == LX) || ((l) == LR)) -> 3 : \
                        (((l) == LD) -> 1 : 0)))
#define ON_CHIP(l)     ((l) != LX)
#define IN_MANIFEST(l) ((l) != LR)

/* ---- the code's checks (the mutants edit these lines) ---- */
#define CHIP_CHECK(l)      (ON_CHIP(l))
#define MANIFEST_CHECK(l)  (IN_MANIFEST(l))
#define SVN_CHECK(l, f)    (SVN(l) >= (f))
#define BINDING_CHECK(r, s) ((r) == (s))
/* revocation: N's pinned floor, judged without any clock */
#define FLOOR_CHECK(l)     (SVN(l) >= FLOOR)
/*
 * a validity window, judged by the guest clock. The host sets that clock,
 * to whatever each check should see: LV's manifest has expired in real
 * time, but a window check never stops the host, so it always passes.
 */
#define WINDOW_CHECK(l)    (true)
/* at boot, a pending token's evidence (pending.c: evidence_floors) */
#define EV_CHECK(i)        (TS(i) != TPEN || FLOOR_CHECK(EVL(i)))
#define UNLOCK_OK(i, l)    (TS(i) != TNONE && TFOR(i) == (l) && (OWN(i) == (l) || OWN(i) == LH) && OWN(i) != LH && EV_CHECK(i))

/* ---- specification predicates ---- */
#define VERIFIED_BY_O(l)   (ON_CHIP(l) && IN_MANIFEST(l) && SVN(l) >= SVN(LO))
#define VERIFIED_BY_N(l)   (ON_CHIP(l) && IN_MANIFEST(l) && SVN(l) <= SVN(LN) && SVN(l) >= FLOOR)
/* a pending slot minted by a release below N's floor */
#define REVOKED_EV(i)      (FRESH(i) && TS(i) == TPEN && SVN(EVL(i)) < FLOOR)
#define BOOTABLE(i)  ((OWN(i) == LO || OWN(i) == LN) && (TS(i) == TACT || TS(i) == TRET))
#define AUTHOPEN(i)  ((OWN(i) == LO || OWN(i) == LN || OWN(i) == LE) && TS(i) != TNONE && !REVOKED_EV(i))
#define ANY(P)       (P(0) || P(1) || P(2) || P(3) || P(4))
#define BOOT_EXCEPT(j) (((j) != 0 && BOOTABLE(0)) || ((j) != 1 && BOOTABLE(1)) || \
                        ((j) != 2 && BOOTABLE(2)) || ((j) != 3 && BOOTABLE(3)) || \
                        ((j) != 4 && BOOTABLE(4)))
#define FREE(i)      (hdr[i] == 0)
/* the lowest index satisfying C (the code walks keyslots in order) */
#define PICK(v, C)   if :: C(0) -> v = 0 :: else -> if :: C(1) -> v = 1 :: else -> \
                     if :: C(2) -> v = 2 :: else -> if :: C(3) -> v = 3 :: else -> \
                     if :: C(4) -> v = 4 fi fi fi fi fi

mtype = { REP, UUID, ACCEPT, DONE };

byte hdr[NS];
byte hist[HIST * NS];
byte hvalid;
bool enrolled;
byte chiptcb = 1;
byte lock;		/* 0 free, 1 O, 2 N, 3 admin: one libcryptsetup context at a time */
bool conn;		/* the O<->N TLS connection is up */
chan o2n = [1] of { mtype, byte, byte };
chan n2o = [1] of { mtype, byte, byte };
bool nwait;		/* N in upgrade mode, waiting for O */
byte nsess;
byte sessctr;
byte mseenO, mseenN;	/* sessions whose report the MITM holds */
bool mhasN;		/* the adversary holds N's sealing-derived slot secret */
byte forged, nrec;
bool hdone;		/* ghost: a handoff to N completed */
byte nopened;		/* ghost: slot+1 N opened (pin verified) in its commit context */
byte faults;		/* LIVE: crashes and drops so far */

hidden byte t_i, t_m;

inline max_active(res) {
	t_m = 0; t_i = 0;
	do
	:: t_i < NS ->
		if
		:: TS(t_i) == TACT && SVN(TFOR(t_i)) > t_m -> t_m = SVN(TFOR(t_i))
		:: else
		fi;
		t_i++
	:: else -> break
	od;
	res = t_m
}

inline wr(i, v) { hdr[i] = v }

/* property 5, checked at every keyslot kill */
inline kill(j) {
	assert(5 == 5 && (!BOOTABLE(j) || BOOT_EXCEPT(j)));
	hdr[j] = 0
}

/* property 2 (O side) and 3, checked at every keyslot add */
inline add_check(l) {
	max_active(t_m);
	assert(3 == 3 && SVN(l) >= t_m)	/* property 3 */
}

inline flush() {
	do :: nempty(o2n) -> o2n?_, _, _ :: empty(o2n) -> break od;
	do :: nempty(n2o) -> n2o?_, _, _ :: empty(n2o) -> break od
}
inline close_conn() { conn = false; flush() }

#define SEND(ch, T, a, b, lbl) if :: atomic { conn -> ch!T, a, b } :: atomic { !conn -> goto lbl } fi
#define RECV(ch, T, a, b, lbl) if :: ch?T, a, b :: atomic { !conn && empty(ch) -> goto lbl } fi

#define O_BOOT(i)   UNLOCK_OK(i, LO)
#define N_BOOT(i)   UNLOCK_OK(i, LN)
#define N_PEND(i)   (TS(i) == TPEN && TFOR(i) == LN)
#define OTHERACT(i) (TS(i) == TACT && TFOR(i) != LN && OWN(i) != LE)
#define RETIRED(i)  (TS(i) == TRET)
#define ESCROW(i)   (OWN(i) == LE && TS(i) != TNONE)
#define OLDSLOT(i)  (OWN(i) == me && TS(i) == TACT && TCB(i) < chiptcb)
#define NEWSLOT(i)  (OWN(i) == me && TS(i) == TACT && TCB(i) == chiptcb)
#define STALE(i)    ((TS(i) == TNONE && OWN(i) != L0) || (TS(i) == TPEN && TFOR(i) == rep))
#define ORPHAN(i)   (TS(i) == TNONE && OWN(i) != L0)
#define N_ACT(i)    (TS(i) == TACT && OWN(i) == LN)


/*
 * A failpoint: the code may be killed here (SIGKILL, power loss). The kill
 * is the process jumping to its crash label; the header keeps every write
 * made so far. In the LIVE configuration kills count against MAXFAULT.
 */
#ifdef LIVE
#define KILL    atomic { faults < MAXFAULT -> faults++ }; goto crash
#define BOOT(C) ANY(C)
#else
#define KILL    goto crash
#define BOOT(C) if :: ANY(C) :: goto crash fi
#endif
#define FP  if :: skip :: KILL fi

/* TCB re-key by the running launch `me`: new slot at the chip's TCB, then kill the old */
inline rekey(lk) {
	atomic { lock == 0 && ANY(OLDSLOT) -> lock = lk; PICK(old, OLDSLOT);
		 max_active(fl); ok = SVN_CHECK(me, fl) };
	if
	:: ok && !ANY(NEWSLOT) ->
		atomic { ANY(FREE) -> PICK(i, FREE); add_check(me); wr(i, MK(me, TNONE, chiptcb)) };
		FP;	/* rekey.after-keyslot */
		atomic { wr(i, MK(me, TACT, chiptcb)) };
		FP	/* rekey.after-token */
	:: else
	fi;
	atomic { if :: ok && BOOT_EXCEPT(old) -> kill(old) :: else fi };
	FP;	/* rekey.after-retire */
	atomic { lock = 0; i = 0; old = 0; fl = 0; ok = false }
}

/* keyd retire: kill a slot kept for one rollback, never the last bootable one */
inline retire(lk) {
	atomic { lock == 0 && ANY(RETIRED) -> lock = lk; PICK(old, RETIRED); ok = BOOT_EXCEPT(old) };
	FP;	/* retire.before-kill */
	atomic { if :: ok -> kill(old) :: else fi };
	FP;	/* retire.after-kill */
	atomic { lock = 0; old = 0; ok = false }
}

/* ------------------------------------------------------------------ O */
active proctype O()
{
	byte me = LO;
	byte i, old, s, peer, mid, rep, rs, keys, fl;
	bool ok;
	goto start;
crash:
	atomic {
		if :: lock == 1 -> lock = 0 :: else fi;
		if :: peer == LN -> close_conn() :: else fi;
		i = 0; old = 0; s = 0; peer = 0; mid = 0; rep = 0; rs = 0; keys = 0; fl = 0; ok = false
	};
start:
	if
	:: !enrolled ->
		atomic { lock == 0 -> lock = 1; t_i = 0;
			 do :: t_i < NS -> hdr[t_i] = 0; t_i++ :: else -> break od };
		FP;	/* enroll.after-format */
		atomic { hdr[0] = MK(LO, TNONE, chiptcb) };
		FP;	/* enroll.after-keyslot */
		atomic { hdr[0] = MK(LO, TACT, chiptcb); enrolled = true };
		FP;	/* enroll.after-token */
		/* escrow keyslot+token, written by keyd-recover at provisioning (model-only step) */
		atomic { hdr[1] = MK(LE, TACT, 1); lock = 0 }
	:: else
	fi;

	/* boot: unlock through a slot bound to O, pin verified (or fail and be restarted) */
	BOOT(O_BOOT);

o_loop:
	do
	:: atomic { sessctr < SESS && nwait -> sessctr++; s = sessctr; nsess = s;
		    nwait = false; conn = true; peer = LN };
		SEND(o2n, REP, s, LO, o_abort);
		RECV(n2o, REP, rs, rep, o_abort);
		break
#ifdef MITM
	:: atomic { sessctr < SESS -> sessctr++; s = sessctr; peer = LM;
		    if :: mid = LX :: mid = LR :: mid = LD :: mid = LV fi;
		    mseenO = mseenO | (1 << s);
		    /* the MITM answers with its own genuine report or replays one of N's */
		    if
		    :: rs = s; rep = mid
		    :: (mseenN >> 1) & 1 -> rs = 1; rep = LN
		    :: (mseenN >> 2) & 1 -> rs = 2; rep = LN
		    :: (mseenN >> 3) & 1 -> rs = 3; rep = LN
		    fi };
		break
#endif
#ifdef LIFECYCLE
	:: rekey(1)
#endif
	:: retire(1)
	:: KILL		/* the host kills O while it idles */
	od;

	/* mutual attestation, O side: binding, chip, manifest, SVN */
	ok = BINDING_CHECK(rs, s) && CHIP_CHECK(rep) && MANIFEST_CHECK(rep) && SVN_CHECK(rep, SVN(LO));
	if :: !ok -> goto o_abort :: else fi;
	/*
	 * keys: whose key the fresh slot secrets get wrapped to. The report
	 * vouches for the key it was bound to (the session binding); a MITM
	 * pairs whatever report passed with its own key.
	 */
	if
	:: peer == LN ->
		SEND(o2n, UUID, s, 0, o_abort);
		RECV(n2o, ACCEPT, rs, keys, o_abort)
	:: else ->
		if :: keys = mid :: mhasN -> keys = LN fi
	fi;

	/* one crypt context: SVN against the header's active tokens, clean up, add */
	atomic { lock == 0 -> lock = 1; max_active(fl); ok = SVN_CHECK(rep, fl) };
	if :: !ok -> lock = 0; goto o_abort :: else fi;
	do
	:: atomic { ANY(STALE) -> PICK(i, STALE); kill(i) }
	:: atomic { !ANY(STALE) -> break }
	od;
	FP;	/* handoff.before-keyslot */
	atomic {
		if
		:: ANY(FREE) -> PICK(i, FREE);
			assert(2 == 2 && VERIFIED_BY_O(keys));	/* property 2 */
			add_check(keys);		/* property 3 */
			wr(i, MKF(keys, TNONE, chiptcb))
		:: else -> lock = 0; goto o_abort
		fi };
	FP;	/* handoff.after-keyslot */
	atomic { wr(i, MKF(keys, TPEN, chiptcb)) };
	FP;	/* handoff.after-token */
	skip;	/* MUTANT:early-retire */
	atomic { lock = 0; i = 0; fl = 0 };
	if
	:: peer == LN ->
		/* N closes the connection once it has read DONE */
		SEND(o2n, DONE, s, 0, o_abort);
		atomic { i = 0; s = 0; peer = 0; mid = 0; rep = 0; rs = 0; keys = 0; fl = 0; ok = false };
		goto o_loop
	:: else
	fi;
o_abort:
	atomic {
		if :: peer == LN -> close_conn() :: else fi;
		i = 0; s = 0; peer = 0; mid = 0; rep = 0; rs = 0; keys = 0; fl = 0; ok = false
	};
	goto o_loop
}

/* ------------------------------------------------------------------ N */
active proctype N()
{
	byte me = LN;
	byte i, j, old, s, peer, mid, rep, rs, fl;
	bool ok, kill_policy;
	goto start;
crash:
	atomic {
		if :: lock == 2 -> lock = 0 :: else fi;
		if :: peer == LO -> close_conn() :: else fi;
		i = 0; j = 0; old = 0; s = 0; peer = 0; mid = 0; rep = 0; rs = 0; fl = 0;
		ok = false; kill_policy = false; nwait = false; nopened = 0
	};
start:
#ifndef LIVE
	if
	:: goto real_boot
	:: skip
	fi;
#endif
	/* ---- upgrade mode: keyd handoff receive ---- */
n_wait:
	nwait = true;
	if
	:: atomic { !nwait -> peer = LO; s = nsess };
		RECV(o2n, REP, rs, rep, n_abort)
#ifdef MITM
	:: atomic { nwait && sessctr < SESS -> nwait = false; sessctr++; s = sessctr; peer = LM;
		    if :: mid = LX :: mid = LR :: mid = LD :: mid = LV fi;
		    if
		    :: rs = s; rep = mid
		    :: (mseenO >> 1) & 1 -> rs = 1; rep = LO
		    :: (mseenO >> 2) & 1 -> rs = 2; rep = LO
		    :: (mseenO >> 3) & 1 -> rs = 3; rep = LO
		    fi }
#endif
#ifndef LIVE
	:: atomic { nwait -> nwait = false }; goto crash	/* the host restarts N */
#endif
	fi;
	ok = BINDING_CHECK(rs, s) && CHIP_CHECK(rep) && MANIFEST_CHECK(rep) && SVN_CHECK(LN, SVN(rep)) &&
	     FLOOR_CHECK(rep) && WINDOW_CHECK(rep);
	if :: !ok -> goto n_abort :: else fi;
	if
	:: peer == LO ->
		SEND(n2o, REP, s, LN, n_abort);
		RECV(o2n, UUID, rs, rep, n_abort);
		assert(2 == 2 && VERIFIED_BY_N(LO));	/* property 2, N side: the real peer is O */
		SEND(n2o, ACCEPT, s, LN, n_abort);	/* N's key was in its report; ACCEPT holds no secret */
		RECV(o2n, DONE, rs, rep, n_abort);
		hdone = true;
		atomic { close_conn(); peer = 0 }
	:: else ->
		mseenN = mseenN | (1 << s);
		assert(2 == 2 && VERIFIED_BY_N(mid));	/* property 2, N side: the real peer is the MITM */
		/* a compromised signed older release (LD) names a volume it does not hold */
		skip	/* MUTANT:n-sends-keys */
	fi;
#ifdef LIVE
	end_done: false;
#endif
	/* handoff done: N powers off and later boots for real */
	goto crash;
n_abort:
	atomic {
		if :: peer == LO -> close_conn() :: else fi;
		s = 0; peer = 0; mid = 0; rep = 0; rs = 0
	};
	goto n_wait;

	/* ---- real boot: unlock, then keyd commit ---- */
real_boot:
	BOOT(N_BOOT);
	if
	:: atomic { lock == 0 && ANY(N_PEND) -> lock = 2; PICK(i, N_PEND);
		    /* re-open through the pending slot in the commit's own context */
		    nopened = (UNLOCK_OK(i, LN) -> i + 1 : 0);
		    assert(8 == 8 && (!UNLOCK_OK(i, LN) || !REVOKED_EV(i)));	/* property 8 */
		    ok = UNLOCK_OK(i, LN) };
		if :: !ok -> atomic { lock = 0; i = 0; ok = false; nopened = 0 }; goto n_run :: else fi;
		FP;	/* commit.before-activate */
		if
		:: !ANY(N_ACT) ->
			/* replace the pending slot (O's secrets) by one sealed to N */
			do
			:: atomic { ANY(ORPHAN) -> PICK(j, ORPHAN); kill(j) };
				FP	/* commit.after-reclaim */
			:: atomic { !ANY(ORPHAN) -> break }
			od;
			atomic { assert(4 == 4 && nopened == i + 1);	/* property 4 */
				 if
				 :: ANY(FREE) -> PICK(j, FREE); add_check(LN); wr(j, MK(LN, TNONE, TCB(i)))
				 :: else -> lock = 0; i = 0; ok = false; nopened = 0; goto n_run
				 fi };
			FP;	/* commit.after-keyslot */
			atomic { wr(j, MK(LN, TACT, TCB(j))) };	/* MUTANT:commit-in-place */
			FP	/* commit.after-token */
		:: else	/* an earlier run got that far: only the pending slot is left to drop */
		fi;
		/* the pending slot goes: token first (an orphan keyslot), then the keyslot */
		atomic { wr(i, MKF(LN, TNONE, TCB(i))) };
		FP;	/* commit.before-kill */
		atomic { kill(i) };
		FP;	/* commit.after-kill */
		if :: kill_policy = true :: kill_policy = false fi;
		do
		:: atomic { ANY(OTHERACT) -> PICK(j, OTHERACT);
			    if
			    :: kill_policy && BOOT_EXCEPT(j) -> kill(j)
			    :: else -> wr(j, MK(OWN(j), TRET, TCB(j)))
			    fi }
		:: atomic { !ANY(OTHERACT) -> break }
		od;
		FP;	/* commit.after-retire */
		atomic { lock = 0; nopened = 0; i = 0; j = 0; ok = false; kill_policy = false }
	:: else
	fi;
n_run:
	do
#ifdef LIFECYCLE
	:: rekey(2)
#endif
	:: retire(2)
	:: KILL		/* the host kills or reboots N */
	od
}

#ifdef LIFECYCLE
/* ------------------------------------------------- admin (keyd-recover) */
active proctype Admin()
{
	byte i, me, fl;
	bool ok;
	goto start;
crash:
	atomic { if :: lock == 3 -> lock = 0 :: else fi; i = 0; me = 0; fl = 0; ok = false };
start:
	do
	:: atomic { nrec < 1 && lock == 0 && ANY(ESCROW) && (!ANY(O_BOOT) || !ANY(N_BOOT)) ->
		    lock = 3; nrec++;
		    /* admins recover a launch that cannot unlock on its own */
		    if :: !ANY(O_BOOT) -> me = LO :: !ANY(N_BOOT) -> me = LN fi;
		    max_active(fl); ok = SVN_CHECK(me, fl) && ANY(FREE) };
		if
		:: ok ->
			atomic { PICK(i, FREE); add_check(me); wr(i, MK(me, TNONE, chiptcb)) };
			FP;	/* recover.after-keyslot */
			atomic { wr(i, MK(me, TACT, chiptcb)) };
			FP	/* recover.after-token */
		:: else
		fi;
		atomic { lock = 0; i = 0; me = 0; fl = 0; ok = false }
	od
}
#endif

/* ------------------------------------------------------------- the host */
active proctype Host()
{
	byte t;
	do
#ifdef LIVE
	:: atomic { faults < MAXFAULT && conn -> faults++; close_conn() }	/* drop */
#else
	:: atomic { conn -> close_conn() }		/* drop the connection */
#ifdef LIFECYCLE
	:: atomic { chiptcb == 1 -> chiptcb = 2 }	/* firmware update */
#endif
	/* copy the header aside, at any moment the host likes */
	:: atomic { enrolled && lock == 0 ->
		    t_i = 0;
		    do :: t_i < NS -> hist[t_i] = hdr[t_i]; t_i++ :: else -> break od;
		    hvalid = 1 }
	/* roll the disk back to the copy (a swap: the replaced state stays seen) */
	:: atomic { lock == 0 && hvalid > 0 ->
		    t_i = 0;
		    do
		    :: t_i < NS -> t = hdr[t_i]; hdr[t_i] = hist[t_i]; hist[t_i] = t; t_i++
		    :: else -> break
		    od; t = 0 }
#ifndef LIFECYCLE
	/* a keyslot that opens with any passphrase and a pending token naming N */
	:: atomic { enrolled && forged < 1 && lock == 0 && ANY(FREE) ->
		    forged++; PICK(t, FREE); wr(t, MK(LH, TPEN, 1)); t = 0 }
	/*
	 * or (one of the two per run): a revoked signed release (LV) that
	 * holds a volume makes a pending slot for N: secrets it chose, wrapped
	 * to N's public key, its own genuine report and signed manifest as
	 * evidence. The model's header stands for whichever header the host
	 * gives N.
	 */
	:: atomic { enrolled && forged < 1 && lock == 0 && ANY(FREE) ->
		    forged++; PICK(t, FREE); wr(t, MKV(LN, TPEN, 1)); t = 0 }
#endif
#endif
	od
}

/*
 * properties 1 (nothing is lost) and 1s (the committed launch still boots),
 * 6 (the adversary -- the host, a compromised signed older release -- never
 * holds a secret that opens a slot of N), 7 (no active slot of N opens
 * with secrets O made) and 8 (no slot made by a release below N's floor is
 * one N would boot through, whatever the clock) in every state
 */
#define P1  (!enrolled || ANY(AUTHOPEN))
#define P1S (!enrolled || ANY(BOOTABLE))
#define NSEALED(i)  (OWN(i) == LN && !FRESH(i))
#define ACTFRESH(i) (OWN(i) == LN && FRESH(i) && TS(i) == TACT)
#define P6  (!mhasN || !ANY(NSEALED))
#define P7  (!ANY(ACTFRESH))
#define NREVOKED(i) (N_BOOT(i) && REVOKED_EV(i))
#define P8  (!ANY(NREVOKED))
#ifndef LIVE
active proctype Monitor()
{
	atomic { !(P1 && P1S && P6 && P7 && P8) ->
		 assert(1 == 1 && P1 && P1S); assert(6 == 6 && P6); assert(7 == 7 && P7);
		 assert(8 == 8 && P8) }
}
#else
ltl live { <> hdone }
#endif
