# hearth's git prompt for bash and zsh: asks the daemon for GET /git/summary?format=text without starting
# a single process (no node, no git, no curl): zsh talks to the unix socket with its zsh/net/socket
# module, bash to the TCP port with /dev/tcp and the token; curl is the fallback where neither exists.
# Source it from ~/.bashrc or ~/.zshrc:
#
#   . /path/to/hearth/plugins/git/prompt.sh
#   bash:  PS1='\w$(hearth_git_prompt)\$ '
#   zsh:   setopt prompt_subst; PROMPT='%~$(hearth_git_prompt)%# '
#
# Prints nothing outside a repository, or when the daemon is not running (it never starts one).
# Shows ` (branch|ACTION step/total ^ahead vbehind +staged ~unstaged ?untracked !conflicted $stashes)`,
# each count only when not zero. ACTION is what git's own prompt script shows for an operation in
# progress (REBASE, AM, AM/REBASE, MERGING, CHERRY-PICKING, REVERTING, BISECTING), with `step/total` where
# it shows them; during a rebase the branch is the one being rebased. A detached HEAD shows the tag
# pointing at it in parentheses, as git's script does (`(v1.0)`), else its short commit id; an unborn one
# `no commits`.
# HEARTH_STATE_DIR (default $XDG_STATE_HOME/hearth) and HEARTH_SOCKET override where the daemon is.

# Percent-encodes $1 byte by byte into _hearth_q, with builtins only.
_hearth_urlencode() {
  local LC_ALL=C s=$1 i c hex
  _hearth_q=
  for (( i = 0; i < ${#s}; i++ )); do
    c=${s:$i:1}
    case $c in
      [a-zA-Z0-9/._~-]) _hearth_q+=$c ;;
      *) printf -v hex '%%%02X' "'$c"; _hearth_q+=$hex ;;
    esac
  done
}

# Sends the request on fd $1 and reads the body of a 200 answer into _hearth_body.
_hearth_exchange() {
  local fd=$1 request=$2 line answered=
  _hearth_body=
  printf '%s' "$request" >&$fd || return 1
  IFS= read -r -t 2 line <&$fd || return 1
  case $line in 'HTTP/1.'?' 200 '*) answered=ok ;; esac
  while IFS= read -r -t 2 line <&$fd; do [ "$line" = $'\r' ] && break; done
  while IFS= read -r -t 2 line <&$fd; do _hearth_body+=$line$'\n'; done
  [ -n "$answered" ]
}

_hearth_summary() {
  local state=${HEARTH_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/hearth}
  local sock=${HEARTH_SOCKET:-$state/hearth.sock}
  [ -S "$sock" ] || return 1
  _hearth_urlencode "$PWD"
  local target="/git/summary?format=text&repo=$_hearth_q" fd ok=1
  if [ -n "$ZSH_VERSION" ] && zmodload zsh/net/socket 2>/dev/null && zsocket "$sock" 2>/dev/null; then
    fd=$REPLY
    _hearth_exchange "$fd" "GET $target HTTP/1.0"$'\r\n'"Host: localhost"$'\r\n\r\n' && ok=0
    exec {fd}>&-
    return $ok
  fi
  if [ -n "$BASH_VERSION" ] && [ -z "$HEARTH_SOCKET" ] && [ -r "$state/daemon.json" ] && [ -r "$state/token" ]; then
    local json token port host re_port='"port": *([0-9]+)' re_host='"host": *"([^"]+)"'
    IFS= read -r -d '' json < "$state/daemon.json"
    IFS= read -r token < "$state/token"
    [[ $json =~ $re_port ]] && port=${BASH_REMATCH[1]}
    [[ $json =~ $re_host ]] && host=${BASH_REMATCH[1]}
    if [ -n "$port" ] && [ -n "$host" ] && { exec {fd}<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
      _hearth_exchange "$fd" "GET $target HTTP/1.0"$'\r\n'"Host: localhost"$'\r\n'"Authorization: Bearer $token"$'\r\n\r\n' && ok=0
      exec {fd}>&-
      return $ok
    fi
  fi
  command -v curl >/dev/null 2>&1 || return 1
  _hearth_body=$(curl -sf --max-time 2 --unix-socket "$sock" "http://localhost$target" 2>/dev/null)
}

hearth_git_prompt() {
  local _hearth_q _hearth_body
  _hearth_summary || return 0
  local key value branch='' head='' ahead=0 behind=0 staged=0 unstaged=0 untracked=0 conflicted=0 stashes=0
  local action='' step='' total='' tag=''
  while IFS='=' read -r key value; do
    case $key in
      branch) branch=$value ;;
      head) head=$value ;;
      ahead) ahead=$value ;;
      behind) behind=$value ;;
      staged) staged=$value ;;
      unstaged) unstaged=$value ;;
      untracked) untracked=$value ;;
      conflicted) conflicted=$value ;;
      stashes) stashes=$value ;;
      action) action=$value ;;
      step) step=$value ;;
      total) total=$value ;;
      tag) tag=$value ;;
    esac
  done <<HEARTH_EOF
$_hearth_body
HEARTH_EOF
  local s
  if [ -n "$branch" ]; then s=$branch
  elif [ -n "$tag" ]; then s="($tag)"
  elif [ -n "$head" ]; then s=${head:0:7}
  else s='no commits'
  fi
  if [ -n "$action" ]; then
    s="$s|$action"
    [ -n "$step" ] && [ -n "$total" ] && s="$s $step/$total"
  fi
  [ "$ahead" != 0 ] && s="$s ^$ahead"
  [ "$behind" != 0 ] && s="$s v$behind"
  [ "$staged" != 0 ] && s="$s +$staged"
  [ "$unstaged" != 0 ] && s="$s ~$unstaged"
  [ "$untracked" != 0 ] && s="$s ?$untracked"
  [ "$conflicted" != 0 ] && s="$s !$conflicted"
  [ "$stashes" != 0 ] && s="$s \$$stashes"
  printf ' (%s)' "$s"
}
