/*
 * keyd rotate: volume-key rotation under crashes, torn writes and header
 * rollback. One volume of NC data chunks, two keys (K0 before, K1 after),
 * two credentials: P (this launch, re-created for K1) and R (revoked: the
 * retired previous version's slot, or an old escrow share; both hold K0
 * only). The host keeps copies of the header at any moment (taken after
 * every header write, and one from before the rotation) and may restore any
 * of them; it cannot make a keyslot for a key it does not have.
 *
 * Steps (failpoint names, rotate.h):
 *   rotate.after-keyslot / after-token   P gets a keyslot for K1 (unbound)
 *   rotate.after-old-tokens              R's token goes (its keyslot stays)
 *   rotate.after-init                    reencryption metadata, boundary 0
 *   hotzone b: journal commit, data write (may tear), boundary b+1
 *                                        (rotate.mid-run, before-finalize)
 *   rotate.after-finish                  every K0 keyslot and digest gone
 * A crash can stop the rotation anywhere; resuming replays the journal.
 * The application writes chunks meanwhile, through the current mapping.
 *
 * Properties (asserted by the monitor in every reachable state):
 *   6  nothing lost: P, with the current header, opens the key of every
 *      chunk (except the one whose journal a resume will replay)
 *   7  revocation: no header the host holds (current, or any copy, including
 *      one from before the rotation) gives R the key of a chunk written after
 *      the rotation finished
 *   8  a header from before the rotation opens, for anyone, no chunk
 *      written after it
 *
 * Mutants (check.sh): no journal replay; writes after the rotation still
 * under K0; R's slot re-created for K1; resuming the finished-but-not-final
 * state from offset 0 as libcryptsetup 2.6 does (data re-encrypted twice).
 */

#define NC 3
#define K0 1
#define K1 2
#define TORN 4
#define GARBAGE 8	/* data under K1 decrypted with K0 and encrypted again */
#define NSNAP 5
#define NWRITES 2

byte hP = K0, hR = K0;	/* keys each credential's keyslots hold in the current header */
byte phase;		/* 0 none, 1 prepared, 2 running, 3 done */
byte b;			/* chunks below b are under K1 while running */
byte jr;		/* journal: chunk in flight + 1; 0 none */
byte key[NC] = K0;	/* key each chunk is under on disk */
bool after[NC];		/* written after the rotation finished */
byte sP[NSNAP], sR[NSNAP];
byte ns;

inline snapshot() {
	if
	:: ns < NSNAP -> sP[ns] = hP; sR[ns] = hR; ns++
	:: true -> skip
	fi
}

active proctype Rotate() {
	/* the host's copy from before the rotation */
	atomic { sP[0] = hP; sR[0] = hR; ns = 1 }
	atomic { hP = hP | K1; phase = 1; snapshot() }	/* P's keyslot for K1 */
	atomic { phase = 2; b = 0; snapshot() }		/* init */
loop:
	do
	:: b < NC ->
		atomic { jr = b + 1; snapshot() }	/* hotzone committed to the journal */
		if
		:: key[b] == K1 -> key[b] = GARBAGE	/* re-encrypting what is already new */
		:: else ->
			if
			:: key[b] = K1
			:: key[b] = TORN; goto crash	/* power loss inside the data write */
			fi
		fi;
		atomic { b++; jr = 0; snapshot() }
	:: b == NC ->
		if
		:: true -> break
		:: true -> goto crash_done	/* power loss before the finish */
		fi
	od;
finish:
	/* libcryptsetup's finish: every keyslot of K0 goes (keyd finishes it
	 * itself when libcryptsetup would restart from offset 0) */
	atomic { phase = 3; hP = K1; hR = 0; snapshot() };
	goto end;
crash:
	/* resume (or unlock): the journal is replayed before anything else */
	atomic {
		if
		:: jr > 0 -> key[jr - 1] = K1; b = jr; jr = 0	/* MUTANT:replay */
		:: else -> skip
		fi
	};
	goto loop;
crash_done:
	/* every chunk is under K1, the metadata not yet final: keyd finishes it
	 * (libcryptsetup 2.6 would resume from offset 0) */
	goto finish;	/* MUTANT:finish */
end:
	skip
}

active proctype App() {
	byte c, n;
	do
	:: n < NWRITES ->
		if :: c = 0 :: c = 1 :: c = 2 fi;
		atomic {
			if
			:: jr == c + 1 -> skip		/* the hotzone is locked */
			:: else ->
				if
				:: phase == 3 -> key[c] = K1; after[c] = true	/* MUTANT:write */
				:: phase == 2 && c < b -> key[c] = K1
				:: else -> key[c] = K0
				fi;
				n++
			fi
		}
	:: else -> break
	od
}

active proctype Monitor() {
	byte c, s;
	atomic {
		c = 0;
		do
		:: c < NC ->
			assert((6 == 6) && (jr == c + 1 || (key[c] & hP) != 0));
			assert((7 == 7) && (!after[c] || (key[c] & hR) == 0));
			s = 0;
			do
			:: s < ns ->
				assert((7 == 7) && (!after[c] || (key[c] & sR[s]) == 0));
				s++
			:: else -> break
			od;
			assert((8 == 8) && (!after[c] || (key[c] & (sP[0] | sR[0])) == 0));
			c++
		:: else -> break
		od
	}
}
