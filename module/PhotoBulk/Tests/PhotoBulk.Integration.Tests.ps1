# Pester 5 tests that run the PhotoBulk module for real, as scripts/pester does under pwsh 7.6: the real sidecar
# (PHOTOBULK_EXE) over its pipe, the Samba AD DC named by PB_SAMBA_* and the Graph emulator named by PB_GRAPH_*.
# What is stored is read back with ldapsearch, not through our own code. Nothing here is skipped: a missing
# server is a failure (scripts/pester starts what is missing).
BeforeAll {
    $script:ModuleDir = Split-Path -Parent $PSScriptRoot
    $script:ModulePath = Join-Path $script:ModuleDir 'PhotoBulk.psd1'
    $script:RepoRoot = Split-Path -Parent (Split-Path -Parent $script:ModuleDir)
    $script:Fixtures = Join-Path $script:RepoRoot 'tests/fixtures'
    $script:ModuleFixtures = Join-Path $script:RepoRoot 'tests/sidecar/fixtures/module'
    foreach ($name in 'PHOTOBULK_EXE', 'PB_SAMBA_URL', 'PB_SAMBA_BIND', 'PB_SAMBA_PASSWORD', 'PB_SAMBA_CA', 'PB_SAMBA_BASE', 'PB_GRAPH_URL', 'PB_GRAPH_AUTHORITY', 'PB_GRAPH_CLIENT_SECRET', 'PB_SAMBA_REALM', 'PB_SAMBA_DOMAIN', 'PB_SAMBA_DNS', 'PB_SAMBA_KRB5_CONFIG') {
        if (-not [Environment]::GetEnvironmentVariable($name)) { throw "$name is not set: run the tests with scripts/pester" }
    }
    Import-Module $script:ModulePath -Force
    $script:Cred = New-Object pscredential($env:PB_SAMBA_BIND, (ConvertTo-SecureString $env:PB_SAMBA_PASSWORD -AsPlainText -Force))
    $script:App = New-Object pscredential($env:PB_GRAPH_CLIENT_ID, (ConvertTo-SecureString $env:PB_GRAPH_CLIENT_SECRET -AsPlainText -Force))
    $script:Dc = @{ Server = $env:PB_SAMBA_URL; Credential = $script:Cred; CaFile = $env:PB_SAMBA_CA }
    $script:Cloud = @{ TenantId = $env:PB_GRAPH_TENANT; ClientCredential = $script:App; GraphUrl = $env:PB_GRAPH_URL; GraphAuthorityUrl = $env:PB_GRAPH_AUTHORITY }
    $script:Work = Join-Path $env:PB_PESTER_WORK ('run-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
    $null = New-Item -ItemType Directory -Force -Path $script:Work
    $script:PwFile = Join-Path $script:Work 'ldap.pw'
    [IO.File]::WriteAllText($script:PwFile, $env:PB_SAMBA_PASSWORD)
    if ($PSVersionTable.PSEdition -eq 'Core' -and -not $IsWindows) { & /bin/chmod 600 $script:PwFile }
    $script:AllResults = New-Object System.Collections.Generic.List[object]
    # The pwsh to start for "what an admin types" (a .NET global tool runs as dotnet + pwsh.dll, so not this process's path).
    $script:Pwsh = $env:PB_PWSH
    if (-not $script:Pwsh) { $script:Pwsh = (Get-Command pwsh -CommandType Application | Select-Object -First 1).Source }

    function ConvertTo-LdapFilterValue {
        # RFC 4515 escaping for the tests' own ldapsearch filters.
        param([string]$Value)
        $sb = New-Object System.Text.StringBuilder
        foreach ($b in [Text.Encoding]::UTF8.GetBytes($Value)) {
            if ($b -lt 0x20 -or $b -gt 0x7e -or [char]$b -in '*', '(', ')', '\') { $null = $sb.AppendFormat('\{0:x2}', $b) } else { $null = $sb.Append([char]$b) }
        }
        $sb.ToString()
    }
    function Invoke-LdapSearch {
        param([string]$Filter, [string[]]$Attributes)
        $env:LDAPTLS_CACERT = $env:PB_SAMBA_CA
        $out = & ldapsearch -LLL -x -o ldif-wrap=no -H $env:PB_SAMBA_URL -D $env:PB_SAMBA_BIND -y $script:PwFile -b $env:PB_SAMBA_BASE $Filter @Attributes 2>&1
        if ($LASTEXITCODE -ne 0) { throw "ldapsearch $Filter failed: $out" }
        $out
    }
    function Get-AdUserDn {
        param([string]$Sam)
        $line = Invoke-LdapSearch "(sAMAccountName=$(ConvertTo-LdapFilterValue $Sam))" @('dn') | Where-Object { $_ -like 'dn*' } | Select-Object -First 1
        if (-not $line) { throw "no user $Sam" }
        if ($line -like 'dn:: *') { return [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($line.Substring(5))) }
        $line.Substring(4)
    }
    function Get-AdPhoto {
        # The user's thumbnailPhoto bytes as Samba stores them ($null when there is none), read with ldapsearch.
        param([string]$Sam, [string]$Attribute = 'sAMAccountName')
        $lines = Invoke-LdapSearch "($Attribute=$(ConvertTo-LdapFilterValue $Sam))" @('thumbnailPhoto')
        $line = $lines | Where-Object { $_ -like 'thumbnailPhoto:: *' } | Select-Object -First 1
        if ($line) { return , [Convert]::FromBase64String($line.Substring(16)) }
        $null
    }
    function Get-AdPhotoHashes {
        # sAMAccountName -> SHA-256 of thumbnailPhoto ($null: none) for every user under an OU, in one ldapsearch.
        param([string]$Ou)
        $env:LDAPTLS_CACERT = $env:PB_SAMBA_CA
        $out = & ldapsearch -LLL -x -o ldif-wrap=no -H $env:PB_SAMBA_URL -D $env:PB_SAMBA_BIND -y $script:PwFile -b "OU=$Ou,$env:PB_SAMBA_BASE" '(objectClass=user)' sAMAccountName thumbnailPhoto 2>&1
        if ($LASTEXITCODE -ne 0) { throw "ldapsearch OU=$Ou failed: $out" }
        $map = @{}; $sam = $null
        foreach ($line in $out) {
            if ($line -like 'sAMAccountName: *') { $sam = $line.Substring(16); $map[$sam] = $null }
            elseif ($line -like 'thumbnailPhoto:: *' -and $sam) { $map[$sam] = Get-Sha256 ([Convert]::FromBase64String($line.Substring(16))) }
            elseif ($line -eq '') { $sam = $null }
        }
        $map
    }
    function Set-AdPhoto {
        # What another tool (Exchange, ADUC) writes: a replace through ldapmodify, or a delete when -Bytes is $null.
        param([string]$Sam, [byte[]]$Bytes)
        $dn = Get-AdUserDn $Sam
        $ldif = "dn:: $([Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($dn)))`nchangetype: modify`n"
        if ($Bytes) { $ldif += "replace: thumbnailPhoto`nthumbnailPhoto:: $([Convert]::ToBase64String($Bytes))`n-`n" }
        else { $ldif += "replace: thumbnailPhoto`n-`n" }
        $env:LDAPTLS_CACERT = $env:PB_SAMBA_CA
        $out = $ldif | & ldapmodify -x -H $env:PB_SAMBA_URL -D $env:PB_SAMBA_BIND -y $script:PwFile 2>&1
        if ($LASTEXITCODE -ne 0) { throw "ldapmodify $Sam failed: $out" }
    }
    function Get-Sha256 {
        param([byte[]]$Bytes)
        if ($null -eq $Bytes) { return $null }
        $sha = [Security.Cryptography.SHA256]::Create()
        -join ($sha.ComputeHash($Bytes) | ForEach-Object { $_.ToString('x2') })
    }
    function Get-JpegSize {
        # Width x height from a JPEG's SOF marker; throws when the bytes are not a JPEG.
        param([byte[]]$Bytes)
        if ($Bytes.Length -lt 4 -or $Bytes[0] -ne 0xFF -or $Bytes[1] -ne 0xD8) { throw 'not a JPEG' }
        $i = 2
        while ($i + 9 -lt $Bytes.Length) {
            if ($Bytes[$i] -ne 0xFF) { throw "bad marker at $i" }
            $m = $Bytes[$i + 1]
            $len = $Bytes[$i + 2] * 256 + $Bytes[$i + 3]
            if ($m -ge 0xC0 -and $m -le 0xCF -and $m -notin 0xC4, 0xC8, 0xCC) { return '{0}x{1}' -f ($Bytes[$i + 7] * 256 + $Bytes[$i + 8]), ($Bytes[$i + 5] * 256 + $Bytes[$i + 6]) }
            $i += 2 + $len
        }
        throw 'no SOF marker'
    }
    function New-PhotoFolder {
        # A folder of copies of a real photo, one per account ('<account> 2024.jpg').
        param([string]$Name, [string[]]$Accounts, [string]$Source = (Join-Path $script:Fixtures 'real/astronaut.jpg'))
        $dir = Join-Path $script:Work $Name
        $null = New-Item -ItemType Directory -Force -Path $dir
        foreach ($a in $Accounts) { Copy-Item -LiteralPath $Source -Destination (Join-Path $dir "$a 2024.jpg") }
        $dir
    }
    function Get-StateListing {
        # Every file and folder under a path, with sizes: what a -WhatIf must leave as it was.
        param([string]$Path)
        if (-not (Test-Path -LiteralPath $Path)) { return @() }
        @(Get-ChildItem -LiteralPath $Path -Recurse -Force | ForEach-Object { '{0} {1}' -f $_.FullName, $(if ($_.PSIsContainer) { 'dir' } else { $_.Length }) } | Sort-Object)
    }
    function Invoke-ChildPwsh {
        # A separate pwsh that imports the module and runs $Script (what an admin types), answering prompts from
        # -Answers; returns its output lines (What if: lines and prompts included) and exit code.
        param([string]$Script, [string[]]$Answers = @())
        $file = Join-Path $script:Work ('child-' + [guid]::NewGuid().ToString('N') + '.ps1')
        $prelude = @"
`$ErrorActionPreference = 'Continue'
Import-Module '$script:ModulePath'
`$cred = New-Object pscredential(`$env:PB_SAMBA_BIND, (ConvertTo-SecureString `$env:PB_SAMBA_PASSWORD -AsPlainText -Force))
"@
        Set-Content -LiteralPath $file -Value ($prelude + "`n" + $Script)
        $psi = New-Object System.Diagnostics.ProcessStartInfo -Property @{
            FileName = $script:Pwsh; Arguments = "-NoProfile -File `"$file`""; UseShellExecute = $false
            RedirectStandardInput = $true; RedirectStandardOutput = $true; RedirectStandardError = $true
        }
        $p = [System.Diagnostics.Process]::Start($psi)
        foreach ($a in $Answers) { $p.StandardInput.WriteLine($a) }
        $p.StandardInput.Close()
        $stdout = $p.StandardOutput.ReadToEndAsync(); $stderr = $p.StandardError.ReadToEndAsync()
        if (-not $p.WaitForExit(180000)) { $p.Kill(); throw "child pwsh did not finish: $Script" }
        [pscustomobject]@{ Lines = @($stdout.Result -split "`r?`n"); Errors = $stderr.Result; ExitCode = $p.ExitCode }
    }
    function Get-SidecarProcess {
        & (Get-Module PhotoBulk) { if ($script:Sidecar) { $script:Sidecar.Process } }
    }
    function Get-GraphToken {
        $body = @{ grant_type = 'client_credentials'; client_id = $env:PB_GRAPH_CLIENT_ID; client_secret = $env:PB_GRAPH_CLIENT_SECRET; scope = 'https://graph.microsoft.com/.default' }
        (Invoke-RestMethod -Method Post -Uri "$env:PB_GRAPH_AUTHORITY/$env:PB_GRAPH_TENANT/oauth2/v2.0/token" -Body $body).access_token
    }
    function Invoke-Graph {
        # Graph as the tenant sees it, retried past the emulator's injected 429/503 answers.
        param([string]$Method, [string]$Path, [byte[]]$Body)
        $headers = @{ Authorization = "Bearer $(Get-GraphToken)" }
        for ($attempt = 0; ; $attempt++) {
            try {
                if ($Body) { return Invoke-WebRequest -Method $Method -Uri "$env:PB_GRAPH_URL$Path" -Headers $headers -Body $Body -ContentType 'image/jpeg' }
                return Invoke-WebRequest -Method $Method -Uri "$env:PB_GRAPH_URL$Path" -Headers $headers
            }
            catch {
                $code = 0
                if ($_.Exception.Response) { $code = [int]$_.Exception.Response.StatusCode }
                if ($code -in 429, 503, 504 -and $attempt -lt 20) { Start-Sleep -Milliseconds 1200; continue }
                throw
            }
        }
    }
}

AfterAll {
    Remove-Module PhotoBulk -ErrorAction SilentlyContinue
}

Describe 'Set-PhotoBulk against the Samba AD DC' {
    BeforeAll {
        $script:Users = @('pester.00001', 'pester.00002', 'pester.00003')
        foreach ($u in $script:Users) { Set-AdPhoto $u $null }
        $script:Photos = New-PhotoFolder 'ad-photos' $script:Users
        $script:Backups = Join-Path $script:Work 'ad-backups'
    }
    It '-WhatIf prints one What if line per user and writes and creates nothing' {
        $before = Get-StateListing $script:Work
        $r = Invoke-ChildPwsh "Get-ChildItem '$script:Photos' | Set-PhotoBulk -Server `$env:PB_SAMBA_URL -Credential `$cred -CaFile `$env:PB_SAMBA_CA -BackupPath '$script:Backups' -WhatIf"
        $whatIf = @($r.Lines | Where-Object { $_ -like 'What if:*' })
        $whatIf.Count | Should -Be 3 -Because (($r.Lines -join "`n") + $r.Errors)
        foreach ($u in $script:Users) { ($whatIf -match [regex]::Escape($u)).Count | Should -Be 1 }
        foreach ($u in $script:Users) { Get-AdPhoto $u | Should -BeNullOrEmpty }
        Test-Path -LiteralPath $script:Backups | Should -BeFalse
        Get-StateListing $script:Work | Where-Object { $_ -notmatch 'child-' } | Should -Be @($before | Where-Object { $_ -notmatch 'child-' })
    }
    It 'writes one PhotoBulk.Result per user; Samba holds exactly the bytes the sidecar prepared' {
        $results = @(Get-ChildItem $script:Photos | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false)
        $script:AllResults.AddRange($results)
        $results.Count | Should -Be 3
        foreach ($r in $results) {
            $r.PSObject.TypeNames | Should -Contain 'PhotoBulk.Result'
            $r.Status | Should -Be 'Written'
            $r.Target | Should -Be 'ActiveDirectory'
            $stored = Get-AdPhoto $r.Identity
            Get-Sha256 $stored | Should -Be $r.Sha256
            $stored.Length | Should -Be $r.Bytes
            $stored.Length | Should -BeLessOrEqual 10240
            Get-JpegSize $stored | Should -Be '96x96'
            $r.BackupId | Should -Not -BeNullOrEmpty
        }
        ($results | Format-Table | Out-String) | Should -Match 'pester\.00001\s+ActiveDirectory\s+Written'
    }
    It 'a re-run gives Unchanged and writes nothing' {
        $before = foreach ($u in $script:Users) { Get-Sha256 (Get-AdPhoto $u) }
        $results = @(Get-ChildItem $script:Photos | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false)
        $results.Status | Should -Be @('Unchanged', 'Unchanged', 'Unchanged')
        $(foreach ($u in $script:Users) { Get-Sha256 (Get-AdPhoto $u) }) | Should -Be $before
    }
    It '-Force rewrites (and takes a new backup) without asking' {
        $results = @(Get-ChildItem $script:Photos | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Force -Confirm:$false)
        $results.Status | Should -Be @('Written', 'Written', 'Written')
        ($results.BackupId | Select-Object -Unique).Count | Should -Be 3
    }
    It 'Import-Csv with Identity,Path binds by property name' {
        Set-AdPhoto 'pester.00004' $null
        $csv = Join-Path $script:Work 'photos.csv'
        [pscustomobject]@{ Identity = 'pester.00004'; Path = (Join-Path $script:Fixtures 'real/hopper.jpg') } | Export-Csv -LiteralPath $csv -NoTypeInformation
        $r = @(Import-Csv $csv | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false)
        $r.Count | Should -Be 1
        $r[0].Identity | Should -Be 'pester.00004'
        $r[0].Status | Should -Be 'Written'
        Get-Sha256 (Get-AdPhoto 'pester.00004') | Should -Be $r[0].Sha256
    }
    It 'objects shaped like Get-ADUser output (SamAccountName, UserPrincipalName, DistinguishedName) bind by SamAccountName' {
        Set-AdPhoto 'pester.00005' $null
        $user = [pscustomobject]@{
            SamAccountName = 'pester.00005'; UserPrincipalName = 'pester.00005@photobulk.test'; DistinguishedName = (Get-AdUserDn 'pester.00005')
            Path = (Join-Path $script:Fixtures 'real/hopper.jpg')
        }
        $r = @($user | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false)
        $r[0].Identity | Should -Be 'pester.00005'
        $r[0].DistinguishedName | Should -Be $user.DistinguishedName
        Get-Sha256 (Get-AdPhoto 'pester.00005') | Should -Be $r[0].Sha256
    }
    It '-Confirm asks per user: Yes writes, No does not, and -Force does not switch prompts off' {
        foreach ($u in 'pester.00006', 'pester.00007') { Set-AdPhoto $u $null }
        $dir = New-PhotoFolder 'confirm' @('pester.00006', 'pester.00007')
        $r = Invoke-ChildPwsh "Get-ChildItem '$dir' | Set-PhotoBulk -Server `$env:PB_SAMBA_URL -Credential `$cred -CaFile `$env:PB_SAMBA_CA -BackupPath '$script:Backups' -Force -Confirm | Format-Table -AutoSize | Out-String -Width 200" -Answers @('Y', 'N')
        @($r.Lines | Where-Object { $_ -match 'Are you sure' }).Count | Should -Be 2 -Because ($r.Lines -join "`n")
        Get-AdPhoto 'pester.00006' | Should -Not -BeNullOrEmpty
        Get-AdPhoto 'pester.00007' | Should -BeNullOrEmpty
    }
    It '-ErrorVariable collects one error per failed item: PhotoBulk.<kind>, the result as TargetObject' {
        Set-AdPhoto 'pester.00008' $null
        $dir = New-PhotoFolder 'errvar' @('pester.00008')
        Copy-Item (Join-Path $script:Fixtures 'bad/text.jpg') (Join-Path $dir 'pester.00009 text.jpg')
        Copy-Item (Join-Path $script:Fixtures 'real/hopper.jpg') (Join-Path $dir 'nobody.here.jpg')
        $r = @(Get-ChildItem $dir | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue)
        $r.Count | Should -Be 3
        $errs.Count | Should -Be 2
        foreach ($e in $errs) {
            $e.FullyQualifiedErrorId | Should -Match '^PhotoBulk\.[a-z_]+'
            $e.TargetObject.PSObject.TypeNames | Should -Contain 'PhotoBulk.Result'
        }
        ($errs | Where-Object { $_.TargetObject.Identity -eq 'nobody.here' }).FullyQualifiedErrorId | Should -Match '^PhotoBulk\.user_not_found'
        ($errs | Where-Object { $_.TargetObject.Identity -eq 'pester.00009' }).FullyQualifiedErrorId | Should -Match '^PhotoBulk\.image_invalid'
        ($r | Where-Object Identity -eq 'pester.00008').Status | Should -Be 'Written'
    }
    It '-ErrorAction Stop: the first failure ends the run before anything is written' {
        Set-AdPhoto 'pester.00010' $null
        $dir = New-PhotoFolder 'stop' @('pester.00010')
        Copy-Item (Join-Path $script:Fixtures 'real/hopper.jpg') (Join-Path $dir 'aaa.nobody.jpg')
        { Get-ChildItem $dir | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'PhotoBulk.user_not_found*'
        Get-AdPhoto 'pester.00010' | Should -BeNullOrEmpty
        # The sidecar is still in step: the next call works and gets only its own items.
        $r = @(Get-ChildItem $dir -Filter 'pester*' | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false)
        $r.Identity | Should -Be @('pester.00010')
    }
    It 'hostile input: one clear error each, the batch goes on, nobody else''s photo changes' {
        $dir = Join-Path $script:Work 'hostile'
        $null = New-Item -ItemType Directory -Force -Path $dir
        $cases = @{
            'pester.00011 corrupt.jpg' = 'bad/corrupt_huffman.jpg'; 'pester.00012 truncated.jpg' = 'bad/truncated_header.jpg'
            'pester.00013 text.jpg' = 'bad/text.jpg'; 'pester.00014 bomb.png' = 'bad/png_100000x100000.png'
            'pester.00015 empty.jpg' = 'bad/empty.jpg'; 'nobody.at.all.jpg' = 'real/hopper.jpg'
            'pester.00016 a.jpg' = 'real/hopper.jpg'; 'pester.00016 b.jpg' = 'real/astronaut.jpg'
            'paren(user) x.jpg' = 'real/hopper.jpg'; 'pester.00017 good.jpg' = 'real/hopper.jpg'
        }
        foreach ($k in $cases.Keys) { Copy-Item -LiteralPath (Join-Path $script:Fixtures $cases[$k]) -Destination (Join-Path $dir $k) }
        (Get-Item -LiteralPath (Join-Path $dir 'pester.00016 a.jpg')).LastWriteTime = (Get-Date).AddHours(-2)
        (Get-Item -LiteralPath (Join-Path $dir 'pester.00016 b.jpg')).LastWriteTime = (Get-Date).AddHours(-1)
        $watch = @('pester.00011', 'pester.00012', 'pester.00013', 'pester.00014', 'pester.00015', 'pester.00016', 'starXuser', 'star.user')
        foreach ($u in $watch + 'paren(user)', 'pester.00017') { Set-AdPhoto $u $null }
        Set-AdPhoto 'starXuser' ([IO.File]::ReadAllBytes((Join-Path $PSScriptRoot 'fixtures/exchange-64x64.jpg')))
        $decoy = Get-Sha256 (Get-AdPhoto 'starXuser')
        $inputs = @(Get-ChildItem $dir | Select-Object -ExpandProperty FullName) + (Join-Path $dir 'missing.jpg')
        $r = @($inputs | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue)
        ($r | Where-Object Identity -eq 'pester.00017').Status | Should -Be 'Written'
        ($r | Where-Object Identity -eq 'paren(user)').Status | Should -Be 'Written'
        Get-AdPhoto 'paren(user)' | Should -Not -BeNullOrEmpty
        foreach ($u in 'pester.00011', 'pester.00012', 'pester.00013', 'pester.00014', 'pester.00015') {
            @($r | Where-Object Identity -eq $u).Status | Should -Be @('Failed') -Because $u
            @($errs | Where-Object { $_.TargetObject.Identity -eq $u }).Count | Should -Be 1 -Because $u
            Get-AdPhoto $u | Should -BeNullOrEmpty
        }
        @($errs | Where-Object { $_.TargetObject.Identity -eq 'nobody.at.all' }).FullyQualifiedErrorId | Should -Match 'PhotoBulk\.user_not_found'
        # Two files for one user: the newer is written, the older is reported as a duplicate.
        @($errs | Where-Object { $_.TargetObject.Identity -eq 'pester.00016' }).FullyQualifiedErrorId | Should -Match '^PhotoBulk\.duplicate'
        $dup = @($r | Where-Object { $_.Identity -eq 'pester.00016' -and $_.Status -eq 'Written' })
        $dup.Count | Should -Be 1
        $dup[0].Path | Should -BeLike '*pester.00016 b.jpg'
        Get-Sha256 (Get-AdPhoto 'pester.00016') | Should -Be $dup[0].Sha256
        @($errs | Where-Object { $_.TargetObject.Path -like '*missing.jpg' }).Count | Should -Be 1
        Get-Sha256 (Get-AdPhoto 'starXuser') | Should -Be $decoy
        foreach ($e in $errs) { $e.Exception.Message | Should -Not -BeNullOrEmpty }
    }
    It 'LDAP filter metacharacters in a UPN match that user only (not the decoy)' {
        $decoy = Get-Sha256 (Get-AdPhoto 'starXuser')
        Set-AdPhoto 'star.user' $null
        $r = @([pscustomobject]@{ Identity = 'star*user@photobulk.test'; Path = (Join-Path $script:Fixtures 'real/hopper.jpg') } |
                Set-PhotoBulk @script:Dc -MatchBy UserPrincipalName -BackupPath $script:Backups -Confirm:$false)
        $r[0].Status | Should -Be 'Written'
        $r[0].DistinguishedName | Should -Match 'star\\\*user|star\*user'
        Get-Sha256 (Get-AdPhoto 'star.user') | Should -Be $r[0].Sha256
        Get-Sha256 (Get-AdPhoto 'starXuser') | Should -Be $decoy
    }
    It 'a relative -BackupPath is relative to the PowerShell location, not the sidecar''s folder' {
        $here = Join-Path $script:Work 'relative'
        $null = New-Item -ItemType Directory -Force -Path $here
        Set-AdPhoto 'pester.00018' ([IO.File]::ReadAllBytes((Join-Path $PSScriptRoot 'fixtures/exchange-64x64.jpg')))
        $dir = New-PhotoFolder 'relative-photos' @('pester.00018')
        Push-Location $here
        try { $r = @(Get-ChildItem $dir | Set-PhotoBulk @script:Dc -BackupPath 'rel-backups' -Confirm:$false) }
        finally { Pop-Location }
        $r[0].Status | Should -Be 'Written'
        Test-Path (Join-Path $here 'rel-backups/journal.jsonl') | Should -BeTrue
        @(Get-ChildItem (Join-Path $here 'rel-backups/photos')).Count | Should -Be 1
    }
}

Describe 'Signed in as the current user: a Kerberos ticket, the DC found in DNS, no -Server and no -Credential' {
    # What Set-ADUser users expect. kinit (Debian krb5-user) puts a ticket for the test admin into a private cache;
    # KRB5_CONFIG points at the test KDC only. The sidecar is restarted so that it starts with this environment,
    # the way an admin's session has its logon ticket. -Domain/-DnsServer point the SRV lookup at the DC's own DNS.
    BeforeAll {
        $script:Saved = @{ KRB5CCNAME = $env:KRB5CCNAME; KRB5_CONFIG = $env:KRB5_CONFIG }
        $script:Ccache = Join-Path $script:Work 'krb5cc'
        $env:KRB5_CONFIG = $env:PB_SAMBA_KRB5_CONFIG
        $env:KRB5CCNAME = "FILE:$script:Ccache"
        $out = $env:PB_SAMBA_PASSWORD | & kinit -c "FILE:$script:Ccache" "Administrator@$env:PB_SAMBA_REALM" 2>&1
        if ($LASTEXITCODE -ne 0) { throw "kinit failed: $out" }
        & (Get-Module PhotoBulk) { Stop-PhotoBulkSidecar }
        $script:Dns = @{ Domain = $env:PB_SAMBA_DOMAIN; DnsServer = $env:PB_SAMBA_DNS }
        $script:Backups = Join-Path $script:Work 'krb-backups'
        $script:KrbUsers = @('pester.00060', 'pester.00061')
        foreach ($u in $script:KrbUsers + 'pester.00062') { Set-AdPhoto $u $null }
    }
    AfterAll {
        & (Get-Module PhotoBulk) { Stop-PhotoBulkSidecar }
        foreach ($k in 'KRB5CCNAME', 'KRB5_CONFIG') { [Environment]::SetEnvironmentVariable($k, $script:Saved[$k]) }
    }
    It 'Set-PhotoBulk with only -Domain writes as the ticket''s user; Samba holds the bytes of each result' {
        $dir = New-PhotoFolder 'krb' $script:KrbUsers
        $all = @(Get-ChildItem $dir | Set-PhotoBulk @script:Dns -BackupPath $script:Backups -Confirm:$false -Verbose 4>&1)
        $verbose = @($all | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })
        $r = @($all | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] })
        $r.Status | Should -Be @('Written', 'Written')
        foreach ($x in $r) { Get-Sha256 (Get-AdPhoto $x.Identity) | Should -Be $x.Sha256 }
        $line = @($verbose | Where-Object { $_.Message -like 'Connected to *' })[0].Message
        $line | Should -Match '^Connected to ldap://\S+ as \S*Administrator\S* \(kerberos\)$'
        $line | Should -Match ([regex]::Escape($env:PB_SAMBA_DC_HOST))
        $script:AllResults.AddRange($r)
    }
    It 'Remove-PhotoBulk and Restore-PhotoBulk without -Credential: the photo comes back byte for byte' {
        $before = Get-AdPhoto 'pester.00060'
        $before | Should -Not -BeNullOrEmpty
        (Remove-PhotoBulk -Identity 'pester.00060' @script:Dns -BackupPath $script:Backups -Confirm:$false).Status | Should -Be 'Removed'
        Get-AdPhoto 'pester.00060' | Should -BeNullOrEmpty
        (Restore-PhotoBulk -Identity 'pester.00060' @script:Dns -BackupPath $script:Backups -Confirm:$false).Status | Should -Be 'Restored'
        [Convert]::ToBase64String((Get-AdPhoto 'pester.00060')) | Should -Be ([Convert]::ToBase64String($before))
    }
    It 'Get-PhotoReport with no connection parameters but the domain reads through the same sign-in' {
        $rows = @('pester.00060', 'pester.00062' | Get-PhotoReport @script:Dns)
        $rows.Count | Should -Be 2
        ($rows | Where-Object Identity -eq 'pester.00060').Bytes | Should -Be (Get-AdPhoto 'pester.00060').Length
    }
    It 'what an admin types in a new pwsh: the first Set-PhotoBulk example, with the ticket and nothing else' {
        $dir = New-PhotoFolder 'krb-child' @('pester.00062')
        $example = [string]@((Get-Help Set-PhotoBulk -Full).Examples.Example)[0].Code
        $example | Should -Not -Match '-Server|-Credential'
        $code = $example.Replace('\\files\hr\photos', $dir).Replace('D:\PhotoBackups', $script:Backups) + " -Domain '$env:PB_SAMBA_DOMAIN' -DnsServer '$env:PB_SAMBA_DNS' -Confirm:`$false | Format-Table -AutoSize Identity, Status"
        $child = Invoke-ChildPwsh -Script $code
        $child.ExitCode | Should -Be 0 -Because $child.Errors
        ($child.Lines -join "`n") | Should -Match 'pester\.00062\s+Written'
        Get-AdPhoto 'pester.00062' | Should -Not -BeNullOrEmpty
    }
    It 'with no ticket and no -Credential: a clear error naming kinit and -Credential, and nothing written' {
        $env:KRB5CCNAME = "FILE:$(Join-Path $script:Work 'no-such-krb5cc')"
        & (Get-Module PhotoBulk) { Stop-PhotoBulkSidecar }
        try {
            Set-AdPhoto 'pester.00063' $null
            $dir = New-PhotoFolder 'krb-none' @('pester.00063')
            { Get-ChildItem $dir | Set-PhotoBulk @script:Dns -BackupPath $script:Backups -Confirm:$false } | Should -Throw '*kinit*-Credential*'
            Get-AdPhoto 'pester.00063' | Should -BeNullOrEmpty
        }
        finally {
            $env:KRB5CCNAME = "FILE:$script:Ccache"
            & (Get-Module PhotoBulk) { Stop-PhotoBulkSidecar }
        }
    }
}

Describe 'Remove-PhotoBulk and Restore-PhotoBulk' {
    BeforeAll {
        $script:Backups = Join-Path $script:Work 'rr-backups'
        $script:Original = [IO.File]::ReadAllBytes((Join-Path $PSScriptRoot 'fixtures/exchange-64x64.jpg'))
        Set-AdPhoto 'pester.00020' $script:Original
        Set-AdPhoto 'pester.00021' $null
    }
    It 'Remove-PhotoBulk -WhatIf removes nothing' {
        $null = Remove-PhotoBulk -Identity 'pester.00020' @script:Dc -BackupPath $script:Backups -WhatIf
        Get-Sha256 (Get-AdPhoto 'pester.00020') | Should -Be (Get-Sha256 $script:Original)
        (Get-Command Remove-PhotoBulk).ScriptBlock.Attributes.Where({ $_ -is [System.Management.Automation.CmdletBindingAttribute] }).ConfirmImpact | Should -Be 'High'
    }
    It 'Remove-PhotoBulk backs up, then removes' {
        $r = @(Remove-PhotoBulk -Identity 'pester.00020' @script:Dc -BackupPath $script:Backups -Confirm:$false)
        $r[0].Status | Should -Be 'Removed'
        $r[0].BackupId | Should -Not -BeNullOrEmpty
        Get-AdPhoto 'pester.00020' | Should -BeNullOrEmpty
        $script:AllResults.AddRange($r)
    }
    It 'Restore-PhotoBulk puts it back byte for byte' {
        $r = @(Restore-PhotoBulk -Identity 'pester.00020' @script:Dc -BackupPath $script:Backups -Confirm:$false)
        $r[0].Status | Should -Be 'Restored'
        $r[0].RestoredId | Should -Not -BeNullOrEmpty
        [Convert]::ToBase64String((Get-AdPhoto 'pester.00020')) | Should -Be ([Convert]::ToBase64String($script:Original))
    }
    It 'Set-PhotoBulk results piped to Restore-PhotoBulk undo the run (BackupId by property name)' {
        $dir = New-PhotoFolder 'undo' @('pester.00020', 'pester.00021')
        $set = @(Get-ChildItem $dir | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false)
        $set.Status | Should -Be @('Written', 'Written')
        $undo = @($set | Restore-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false)
        $undo.Status | Should -Be @('Restored', 'Restored')
        [Convert]::ToBase64String((Get-AdPhoto 'pester.00020')) | Should -Be ([Convert]::ToBase64String($script:Original))
        Get-AdPhoto 'pester.00021' | Should -BeNullOrEmpty -Because 'it had no photo before the run'
    }
    It 'a user with no backup, and an unknown user: one error each, the others go on' {
        $r = @('pester.00022', 'nobody.here', 'pester.00020' | Restore-PhotoBulk @script:Dc -BackupPath (Join-Path $script:Work 'empty-backups') -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue)
        $r.Count | Should -Be 3
        $errs.Count | Should -Be 3
        ($errs | Where-Object { $_.TargetObject.Identity -eq 'nobody.here' }).FullyQualifiedErrorId | Should -Match '^PhotoBulk\.user_not_found'
        $r2 = @('nobody.here', 'pester.00020' | Remove-PhotoBulk @script:Dc -BackupPath $script:Backups -Confirm:$false -ErrorVariable errs2 -ErrorAction SilentlyContinue)
        $errs2.Count | Should -Be 1
        ($r2 | Where-Object Identity -eq 'pester.00020').Status | Should -Be 'Removed'
    }
}

Describe 'Exchange on-premises (Set-UserPhoto stub that does what Exchange does)' {
    BeforeAll {
        $script:Calls = New-Object System.Collections.Generic.List[object]
        $script:FailFor = @('pester.00033')
        $script:Exchange64 = [IO.File]::ReadAllBytes((Join-Path $PSScriptRoot 'fixtures/exchange-64x64.jpg'))
        $script:Backups = Join-Path $script:Work 'ex-backups'
        function global:Set-UserPhoto {
            # Records the call; fails when told to; else writes Exchange's own 64x64 copy into thumbnailPhoto, as Exchange does.
            [CmdletBinding(SupportsShouldProcess = $true)]
            param([Parameter(Mandatory = $true)]$Identity, [byte[]]$PictureData)
            $script:Calls.Add([pscustomobject]@{ Identity = [string]$Identity; Size = (Get-JpegSize $PictureData); Bytes = $PictureData.Length })
            if ($script:FailFor -contains [string]$Identity) { throw "The operation couldn't be performed because object '$Identity' couldn't be found." }
            Set-AdPhoto ([string]$Identity) $script:Exchange64
        }
        foreach ($u in 'pester.00031', 'pester.00032', 'pester.00033') { Set-AdPhoto $u $null }
        $script:Dir = New-PhotoFolder 'exchange' @('pester.00031', 'pester.00032', 'pester.00033')
    }
    AfterAll { Remove-Item Function:\Set-UserPhoto -ErrorAction SilentlyContinue }
    It '-Target ExchangeOnPrem: one Set-UserPhoto call per user with the 648x648 bytes; a failing one is Failed and journaled' {
        $script:Calls.Clear()
        $r = @(Get-ChildItem $script:Dir | Set-PhotoBulk -Target ExchangeOnPrem -BackupPath $script:Backups -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue)
        $script:Calls.Count | Should -Be 3
        ($script:Calls | Select-Object -ExpandProperty Size -Unique) | Should -Be '648x648'
        ($r | Where-Object Identity -eq 'pester.00031').Status | Should -Be 'Written'
        ($r | Where-Object Identity -eq 'pester.00033').Status | Should -Be 'Failed'
        $errs.Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -Match '^PhotoBulk\.exchange'
        $journal = @(Get-Content (Join-Path $script:Backups 'journal.jsonl') | ForEach-Object { $_ | ConvertFrom-Json })
        @($journal | Where-Object { $_.t -eq 'failed' -and $_.dn -eq 'pester.00033' }).Count | Should -Be 1
        @($journal | Where-Object { $_.t -eq 'done' -and $_.dn -eq 'pester.00031' }).Count | Should -Be 1
        @($journal | Where-Object { $_.t -eq 'end' }).Count | Should -Be 1
    }
    It 'a re-run calls Set-UserPhoto only for the user that failed' {
        $script:Calls.Clear(); $script:FailFor = @()
        $r = @(Get-ChildItem $script:Dir | Set-PhotoBulk -Target ExchangeOnPrem -BackupPath $script:Backups -Confirm:$false)
        $script:Calls.Identity | Should -Be @('pester.00033')
        ($r | Where-Object Identity -eq 'pester.00031').Status | Should -Be 'Unchanged'
    }
    It '-Target ActiveDirectory, ExchangeOnPrem: Exchange first, then AD, so the AD photo that stays is our 96x96' {
        $script:Calls.Clear()
        foreach ($u in 'pester.00031', 'pester.00032') { Set-AdPhoto $u $null }
        $r = @(Get-ChildItem $script:Dir | Where-Object Name -match '^pester\.0003[12] ' | Set-PhotoBulk -Target ActiveDirectory, ExchangeOnPrem @script:Dc -BackupPath $script:Backups -Force -Confirm:$false)
        $r.Count | Should -Be 4
        $script:Calls.Count | Should -Be 2
        foreach ($u in 'pester.00031', 'pester.00032') {
            $ad = $r | Where-Object { $_.Identity -eq $u -and $_.Target -eq 'ActiveDirectory' }
            $ad.Status | Should -Be 'Written'
            $stored = Get-AdPhoto $u
            Get-JpegSize $stored | Should -Be '96x96'
            Get-Sha256 $stored | Should -Be $ad.Sha256
        }
        [array]::IndexOf(@($r.Target), 'ExchangeOnPrem') | Should -BeLessThan ([array]::IndexOf(@($r.Target), 'ActiveDirectory'))
    }
    It 'several targets: an unknown user gives one error per target, never the same item twice' {
        $dir = New-PhotoFolder 'two-targets' @('pester.00034', 'nobody.two')
        $r = @(Get-ChildItem $dir | Set-PhotoBulk -Target ActiveDirectory, ExchangeOnPrem @script:Dc -BackupPath $script:Backups -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue)
        @($r | ForEach-Object { "$($_.Identity)|$($_.Target)" } | Group-Object | Where-Object Count -gt 1) | Should -BeNullOrEmpty
        $r.Count | Should -Be 4
        @($errs | Where-Object { $_.TargetObject.Identity -eq 'nobody.two' }).Count | Should -BeLessOrEqual 2
        @($errs | Where-Object { $_.TargetObject.Identity -eq 'nobody.two' -and $_.TargetObject.Target -eq 'ActiveDirectory' }).Count | Should -Be 1
    }
}

Describe 'Exchange Online through the Graph emulator (throttled, with injected 429/503)' {
    BeforeAll { $script:Backups = Join-Path $script:Work 'cloud-backups' }
    It '-Target ExchangeOnline with an app secret: every user uploaded once' {
        $users = 301..312 | ForEach-Object { 'seed.{0:d5}' -f $_ }
        $dir = New-PhotoFolder 'cloud' $users
        $before = Invoke-RestMethod "$env:PB_GRAPH_AUTHORITY/_emulator/stats"
        $r = @(Get-ChildItem $dir | Set-PhotoBulk -Target ExchangeOnline @script:Cloud -BackupPath $script:Backups -Confirm:$false)
        $script:AllResults.AddRange($r)
        $r.Count | Should -Be 12
        ($r.Status | Select-Object -Unique) | Should -Be 'Written'
        $after = Invoke-RestMethod "$env:PB_GRAPH_AUTHORITY/_emulator/stats"
        ($after.uploads_applied - $before.uploads_applied) | Should -Be 12
        $after.users_uploaded_twice | Should -Be 0
        $after.early_retries | Should -Be 0
        foreach ($u in $users[0], $users[11]) { (Invoke-Graph GET "/users/$u@photobulk.test/photo/`$value").Content.Length | Should -BeGreaterThan 1000 }
    }
    It 'Get-PhotoReport with the Graph sign-in parameters adds the cloud columns (the same engine report as photobulk report)' {
        $rows = @(Get-PhotoReport -Identity 'seed.00301', 'seed.00313' @script:Dc @script:Cloud)
        $rows.Count | Should -Be 2
        $up = $rows | Where-Object Identity -eq 'seed.00301'
        $up.CloudState | Should -Be 'photo'
        $up.HasCloudPhoto | Should -BeTrue
        $up.CloudWidth | Should -Be 648
        $up.CloudOnly | Should -Be (-not $up.HasPhoto)
        $none = $rows | Where-Object Identity -eq 'seed.00313'
        $none.CloudState | Should -Be 'noPhoto'
        $none.HasCloudPhoto | Should -BeFalse
        if (-not $none.HasPhoto) { $none.NoPhoto | Should -BeTrue } else { $none.AdOnly | Should -BeTrue }
    }
    It '-UseExistingHd copies the cloud HD photo to AD as 96x96 (WhatIf first: WouldWrite, nothing written)' {
        $users = @('seed.00318', 'seed.00319')
        foreach ($u in $users) {
            Set-AdPhoto $u $null
            $null = Invoke-Graph PUT "/users/$u@photobulk.test/photo/`$value" ([IO.File]::ReadAllBytes((Join-Path $script:Fixtures 'real/astronaut.jpg')))
        }
        $dry = @($users | ForEach-Object { [pscustomobject]@{ SamAccountName = $_ } } | Set-PhotoBulk -UseExistingHd @script:Dc @script:Cloud -BackupPath $script:Backups -WhatIf)
        $dry.Status | Should -Be @('WouldWrite', 'WouldWrite')
        foreach ($u in $users) { Get-AdPhoto $u | Should -BeNullOrEmpty }
        $r = @($users | ForEach-Object { [pscustomobject]@{ SamAccountName = $_ } } | Set-PhotoBulk -UseExistingHd @script:Dc @script:Cloud -BackupPath $script:Backups -Confirm:$false)
        $r.Status | Should -Be @('Written', 'Written')
        foreach ($u in $users) {
            $stored = Get-AdPhoto $u
            Get-JpegSize $stored | Should -Be '96x96'
            $stored.Length | Should -BeLessOrEqual 10240
        }
    }
}

Describe 'Get-PhotoReport' {
    It 'runs the Get-PhotoReport examples that need nothing but a DC' {
        $ran = 0
        Push-Location $script:Work
        try {
            foreach ($ex in @((Get-Help Get-PhotoReport -Full).Examples.Example)) {
                $code = ([string]$ex.Code).Replace('dc1.corp.example', 'dc1') -replace '-Server dc1\b', "-Server '$env:PB_SAMBA_URL' -CaFile '$env:PB_SAMBA_CA'"
                if ($code -match 'Get-ADUser|OU=') { continue }
                # The password-less examples sign in as the current user; this process has no ticket (see the Kerberos tests).
                if ($code -notmatch '-Server') { $code = $code -replace '\bGet-PhotoReport\b', "Get-PhotoReport -Server '$env:PB_SAMBA_URL' -Credential `$cred -CaFile '$env:PB_SAMBA_CA'" }
                # The cloud examples run against the Graph emulator.
                $code = $code.Replace('-TenantId contoso.onmicrosoft.com -ClientCredential $app', "-TenantId '$env:PB_GRAPH_TENANT' -ClientCredential `$app -GraphUrl '$env:PB_GRAPH_URL' -GraphAuthorityUrl '$env:PB_GRAPH_AUTHORITY'")
                $cred = $script:Cred
                $app = $script:App
                { $null = & ([scriptblock]::Create($code)) } | Should -Not -Throw -Because $code
                $ran++
            }
        }
        finally { Pop-Location }
        $ran | Should -BeGreaterOrEqual 2
    }
    It 'one PhotoBulk.ReportRow per user; an unknown user is an error with its row' {
        $rows = @(Get-PhotoReport -Identity 'pester.00001', 'pester.00040', 'nobody.here' @script:Dc -ErrorVariable errs -ErrorAction SilentlyContinue)
        $rows.Count | Should -Be 3
        $rows[0].PSObject.TypeNames | Should -Contain 'PhotoBulk.ReportRow'
        ($rows | Where-Object Identity -eq 'pester.00001').HasPhoto | Should -BeTrue
        ($rows | Where-Object Identity -eq 'pester.00001').Width | Should -Be 96
        $errs.Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -Match '^PhotoBulk\.user_not_found'
    }
    It '| Export-Csv writes a row per user' {
        $csv = Join-Path $script:Work 'report.csv'
        Get-PhotoReport -Identity 'pester.00001', 'pester.00002' @script:Dc | Export-Csv -LiteralPath $csv -NoTypeInformation
        $back = @(Import-Csv $csv)
        $back.Count | Should -Be 2
        $back[0].PSObject.Properties.Name | Should -Contain 'Over10KB'
    }
    It '-HtmlPath writes the contact sheet with every photo inline' {
        $html = Join-Path $script:Work 'sheet.html'
        $null = Get-PhotoReport -Identity 'pester.00001', 'pester.00002', 'pester.00040' @script:Dc -HtmlPath $html
        $text = Get-Content -Raw $html
        ([regex]::Matches($text, 'data:image/jpeg;base64')).Count | Should -BeGreaterOrEqual 2
        $text | Should -Match 'pester\.00040'
    }
}

Describe 'The pipe client: progress, stopping, lifecycle, limits' {
    BeforeAll {
        # A 400x900 portrait: Center, Top and Pad give different bytes, so every run below writes.
        $script:Many = 1..300 | ForEach-Object { 'pester.{0:d5}' -f (100 + $_) }
        $script:ManyDir = New-PhotoFolder 'many' $script:Many (Join-Path $script:Fixtures 'edge/portrait_400x900.jpg')
        $script:Backups = Join-Path $script:Work 'many-backups'
        function Start-PhotoBulkRunspace {
            # A second runspace (another PowerShell in this process) with the module imported.
            $ps = [powershell]::Create()
            $null = $ps.AddScript("Import-Module '$script:ModulePath'").Invoke()
            $ps.Commands.Clear()
            $ps
        }
    }
    It 'a 300-user run emits Write-Progress records and writes every user' {
        $ps = Start-PhotoBulkRunspace
        try {
            $null = $ps.AddCommand('Set-PhotoBulk').AddParameter('Path', $script:ManyDir).AddParameter('Server', $env:PB_SAMBA_URL).AddParameter('Credential', $script:Cred).AddParameter('CaFile', $env:PB_SAMBA_CA).AddParameter('BackupPath', $script:Backups).AddParameter('Force', $true).AddParameter('Confirm', $false)
            $out = @($ps.Invoke())
            $out.Count | Should -Be 300
            @($out | Where-Object Status -ne 'Written').Count | Should -Be 0
            $progress = @($ps.Streams.Progress)
            $progress.Count | Should -BeGreaterOrEqual 300
            $progress[-1].RecordType | Should -Be 'Completed'
            ($progress | Where-Object { $_.StatusDescription -match '^150 of 300' }).Count | Should -BeGreaterOrEqual 1
        }
        finally { $ps.Dispose() }
    }
    It 'Select-Object -First 1 downstream stops the run between users; nothing is half-written and the next call is clean' {
        $before = Get-AdPhotoHashes 'Pester'
        $first = @(Get-ChildItem $script:ManyDir | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Crop Pad -Force -Confirm:$false | Select-Object -First 1)
        $first.Count | Should -Be 1
        $after = Get-AdPhotoHashes 'Pester'
        $changed = @($script:Many | Where-Object { $after[$_] -ne $before[$_] })
        $changed.Count | Should -BeLessThan 300
        $changed.Count | Should -BeGreaterOrEqual 1
        foreach ($u in $changed) { Get-JpegSize (Get-AdPhoto $u) | Should -Be '96x96' }
        $r = @(Get-ChildItem $script:ManyDir -Filter 'pester.00400*' | Set-PhotoBulk @script:Dc -BackupPath $script:Backups -Crop Pad -Confirm:$false)
        $r.Identity | Should -Be @('pester.00400')
    }
    It 'PowerShell.Stop() from another thread ends the run between users' {
        $ps = Start-PhotoBulkRunspace
        try {
            $null = $ps.AddCommand('Set-PhotoBulk').AddParameter('Path', $script:ManyDir).AddParameter('Server', $env:PB_SAMBA_URL).AddParameter('Credential', $script:Cred).AddParameter('CaFile', $env:PB_SAMBA_CA).AddParameter('BackupPath', $script:Backups).AddParameter('Crop', 'Top').AddParameter('Force', $true).AddParameter('Confirm', $false)
            $async = $ps.BeginInvoke()
            $deadline = [DateTime]::UtcNow.AddSeconds(120)
            while ($ps.Streams.Progress.Count -lt 5 -and [DateTime]::UtcNow -lt $deadline -and -not $async.IsCompleted) { Start-Sleep -Milliseconds 50 }
            $ps.Stop()
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $journal = Get-Content (Join-Path $script:Backups 'journal.jsonl') | ForEach-Object { $_ | ConvertFrom-Json }
            $lastRun = ($journal | Where-Object t -eq 'run' | Select-Object -Last 1).run
            $intents = @($journal | Where-Object { $_.t -eq 'intent' -and $_.run -eq $lastRun })
            $done = @($journal | Where-Object { $_.t -in 'done', 'failed' -and $_.run -eq $lastRun })
            $intents.Count | Should -BeLessThan 300
            $intents.Count | Should -BeGreaterOrEqual 1
            $done.Count | Should -Be $intents.Count -Because 'every write begun was finished and journaled'
        }
        finally { $ps.Dispose() }
    }
    It 'two runspaces get two sidecars; Remove-Module ends its sidecar' {
        $a = Start-PhotoBulkRunspace; $b = Start-PhotoBulkRunspace
        try {
            $ids = foreach ($ps in $a, $b) {
                $null = $ps.AddScript("`$null = Get-PhotoReport -Identity pester.00001 -Server '$env:PB_SAMBA_URL' -Credential `$args[0] -CaFile '$env:PB_SAMBA_CA'; & (Get-Module PhotoBulk) { `$script:Sidecar.Process.Id }").AddArgument($script:Cred)
                $ps.Invoke() | Select-Object -Last 1
                $ps.Commands.Clear()
            }
            $ids.Count | Should -Be 2
            $ids[0] | Should -Not -Be $ids[1]
            foreach ($id in $ids) { Get-Process -Id $id | Should -Not -BeNullOrEmpty }
            foreach ($ps in $a, $b) { $null = $ps.AddScript('Remove-Module PhotoBulk').Invoke() }
            foreach ($id in $ids) { $p = Get-Process -Id $id -ErrorAction SilentlyContinue; if ($p) { $p.WaitForExit(10000) | Should -BeTrue } }
        }
        finally { $a.Dispose(); $b.Dispose() }
    }
    It 'an oversize request is refused with a clear error (the id-null reply), and the connection goes on' {
        $null = Get-PhotoReport -Identity 'pester.00001' @script:Dc
        $big = 'x' * (17 * 1024 * 1024)
        { & (Get-Module PhotoBulk) { param($p) Invoke-PhotoBulkRpc -Method 'image.prepare' -Params @{ paths = @($p) } } $big } | Should -Throw -ErrorId 'PhotoBulk.*'
        @(Get-PhotoReport -Identity 'pester.00001' @script:Dc).Count | Should -Be 1
    }
    It 'a sidecar that stops answering ends the call after the read timeout, and the next call starts a new one' -Skip:($PSVersionTable.PSEdition -eq 'Desktop' -or $PSVersionTable.Platform -eq 'Win32NT') {
        $null = Get-PhotoReport -Identity 'pester.00001' @script:Dc
        $old = Get-SidecarProcess
        & /bin/kill -STOP $old.Id
        $env:PHOTOBULK_RPC_TIMEOUT = '3'
        try {
            $t0 = [DateTime]::UtcNow
            { Get-PhotoReport -Identity 'pester.00001' @script:Dc } | Should -Throw '*sent nothing for 3 s*'
            ([DateTime]::UtcNow - $t0).TotalSeconds | Should -BeLessThan 20
        }
        finally { Remove-Item Env:\PHOTOBULK_RPC_TIMEOUT; & /bin/kill -CONT $old.Id 2>$null }
        @(Get-PhotoReport -Identity 'pester.00001' @script:Dc).Count | Should -Be 1
        (Get-SidecarProcess).Id | Should -Not -Be $old.Id
    }
    It 'the bind password and the Graph secret appear nowhere: command line, log, results, written files' {
        # One AD write and one cloud upload in this session, so the log and the results cover both secrets.
        $dir = New-PhotoFolder 'secrets' @('pester.00050', 'seed.00330')
        $script:AllResults.AddRange(@(Get-ChildItem $dir -Filter 'pester*' | Set-PhotoBulk @script:Dc -BackupPath (Join-Path $script:Work 'secret-backups') -Force -Confirm:$false))
        $script:AllResults.AddRange(@(Get-ChildItem $dir -Filter 'seed*' | Set-PhotoBulk -Target ExchangeOnline @script:Cloud -BackupPath (Join-Path $script:Work 'secret-backups') -Force -Confirm:$false))
        $script:AllResults.AddRange(@(Get-PhotoReport -Identity 'pester.00050' @script:Dc))
        $p = Get-SidecarProcess
        $log = & (Get-Module PhotoBulk) { $script:Sidecar.Log }
        $secrets = @($env:PB_SAMBA_PASSWORD, $env:PB_GRAPH_CLIENT_SECRET)
        $cmdline = [IO.File]::ReadAllText("/proc/$($p.Id)/cmdline")
        $logText = Get-Content -Raw -LiteralPath $log
        $logText.Length | Should -BeGreaterThan 0
        $logText += (Get-ChildItem -Path ([IO.Path]::GetTempPath()) -Filter 'PhotoBulk-*.log' | Get-Content -Raw) -join ''
        $results = $script:AllResults | ConvertTo-Json -Depth 5
        $results.Length | Should -BeGreaterThan 100
        foreach ($s in $secrets) {
            $cmdline.Contains($s) | Should -BeFalse
            $logText.Contains($s) | Should -BeFalse
            $results.Contains($s) | Should -BeFalse
            foreach ($f in Get-ChildItem -LiteralPath $script:Work -Recurse -File | Where-Object { $_.FullName -ne $script:PwFile -and $_.Name -notlike 'child-*' }) {
                ([IO.File]::ReadAllText($f.FullName)).Contains($s) | Should -BeFalse -Because $f.FullName
            }
        }
    }
}
